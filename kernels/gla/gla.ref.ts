// CPU reference of the gated linear-attention recurrence (spec-rwkv7-gla-abc.md §2.3 steps 4–7; with no gate and
// optional normaliser it is fla's linear attention, spec-deltanet-attention-qwen3next.md §5.3 step 6), token by token:
//   gk ← logsigmoid(gk)/normalizer (clamped below at clampMin);  q, k ← fmap(q), fmap(k)
//   S[i][j] = exp(gk_i)·S[i][j] + k_i·v_j;  o_j = Σ_i (scale·q_i)·S[i][j]
//   normalize: z_i += k_i;  o_j ← o_j / (Σ_i scale·q_i·z_i + 1e-10)
// GQA: query head h reads kv head ⌊h / (H/HKV)⌋. Produces o [N, H·DV] (before the output norm).
import type { Cursor } from '../../src/util/step.ts';

/** Elementwise feature maps of GLA's `feature_map` (applied to q and k after the gate). */
export const FMAP = { none: 0, relu: 1, sigmoid: 2, logsigmoid: 3, swish: 4, sqrelu: 5 } as const;
export type Fmap = keyof typeof FMAP;

export const logsigmoid = (x: number) => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));

export function applyFmap(f: Fmap, x: number): number {
  switch (f) {
    case 'none': return x;
    case 'relu': return x > 0 ? x : 0;
    case 'sigmoid': return 1 / (1 + Math.exp(-x));
    case 'logsigmoid': return logsigmoid(x);
    case 'swish': return x / (1 + Math.exp(-x));
    case 'sqrelu': return x > 0 ? x * x : 0;
  }
}

/** Value columns one GPU workgroup owns; the normaliser z is kept once per tile (each workgroup updates its own copy). */
export const glaValueTile = (DV: number) => Math.min(DV, 64);

/** f32 state per slot: S [H, DK, DV], then when normalizing z [H, DV/tile, DK] (the same z in every copy). */
export function glaStateCols(d: { H: number; DK: number; DV: number; normalize: boolean }): number {
  return d.H * d.DK * d.DV + (d.normalize ? d.H * (d.DV / glaValueTile(d.DV)) * d.DK : 0);
}

export interface GlaDims {
  H: number; HKV: number; DK: number; DV: number; scale: number;
  /** gk ← logsigmoid(gk)/gateNormalizer (GLA: 16); ignored without gk. */
  gateNormalizer: number; clampMin: number | null; fmap: Fmap; normalize: boolean;
}

/**
 * q [N, H·DK], k [N, HKV·DK], v [N, HKV·DV], gk [N, HKV·DK] raw gate logits or null (no decay);
 * state [slots, SLOT] f32: per slot S [H, DK, DV] (S[i][j], i = key), then z [H, tiles, DK] when normalizing (read from
 * tile 0, written to every tile); o [N, H·DV].
 */
export function glaRef(q: Float32Array, k: Float32Array, v: Float32Array, gk: Float32Array | null, state: Float32Array,
  o: Float32Array, cursors: Cursor[], d: GlaDims): void {
  const { H, HKV, DK, DV } = d;
  const SLOT = glaStateCols(d);
  const G = H / HKV;
  const qs = new Float64Array(DK), ks = new Float64Array(DK), dec = new Float64Array(DK), acc = new Float64Array(DV);
  for (const cur of cursors) {
    for (let t = cur.start; t < cur.start + cur.len; t++) {
      for (let h = 0; h < H; h++) {
        const hk = Math.floor(h / G);
        const S = state.subarray(cur.slot * SLOT + h * DK * DV, cur.slot * SLOT + (h + 1) * DK * DV);
        for (let i = 0; i < DK; i++) {
          qs[i] = Math.fround(d.scale * applyFmap(d.fmap, q[t * H * DK + h * DK + i]!));
          ks[i] = applyFmap(d.fmap, k[t * HKV * DK + hk * DK + i]!);
          if (gk) {
            let g = logsigmoid(gk[t * HKV * DK + hk * DK + i]!) / d.gateNormalizer;
            if (d.clampMin !== null) g = Math.max(g, d.clampMin);
            dec[i] = Math.exp(g);
          } else dec[i] = 1;
        }
        acc.fill(0);
        for (let i = 0; i < DK; i++) {
          for (let j = 0; j < DV; j++) {
            const s = Math.fround(dec[i]! * S[i * DV + j]! + ks[i]! * v[t * HKV * DV + hk * DV + j]!);
            S[i * DV + j] = s;
            acc[j]! += qs[i]! * s;
          }
        }
        let den = 1;
        if (d.normalize) {
          const tiles = DV / glaValueTile(DV), zb = cur.slot * SLOT + H * DK * DV + h * tiles * DK;
          den = 1e-10;
          for (let i = 0; i < DK; i++) {
            const zi = Math.fround(state[zb + i]! + ks[i]!);
            for (let c = 0; c < tiles; c++) state[zb + c * DK + i] = zi;
            den += qs[i]! * zi;
          }
        }
        for (let j = 0; j < DV; j++) o[t * H * DV + h * DV + j] = acc[j]! / den;
      }
    }
  }
}
