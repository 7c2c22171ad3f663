// rope_kv op: what runs between the q|k|v projection and sdpa, fused into one dispatch — the projection biases, the
// per-head q/k RMSNorm, RoPE on q and k, and the KV-cache append of k and v (spec-deltanet-attention-qwen3next.md
// §1.6, §1.7). Prefill and decode alike: one workgroup per (token, head), so any step of n tokens.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, uniformOf } from '../lib.ts';
import { ropeKvRef, type RopeKvDims } from './rope_kv.ref.ts';
import { kvCols, type KvDtype } from './sdpa.ts';
import source from './rope_kv.wgsl' with { type: 'text' };

export { ropeKvAux } from './rope_kv.ref.ts';

export const KERNEL = kernel('rope_kv', source, ['step', 'stepmeta', 'q', 'k', 'v', 'kc', 'vc', 'table', 'aux', 'dims']);

/**
 * q [N, H·D] (rotated in place), k, v [N, KV·D] (read only), the caches kc, vc [slots, ctx rows of KV·D as `kv`],
 * table the [2, P, R/2] cos/sin weight, aux the ropeKvAux(...) weight (null when no norm and no bias); `norm`:
 * q/k RMSNorm with eps (weights 1 + w when plusOne); `bias`: aux holds the q/k/v biases.
 */
export interface RopeKvArgs {
  q: Tensor; k: Tensor; v: Tensor; kc: Tensor; vc: Tensor; table: Weight; aux: Weight | null;
  H: number; KV: number; D: number; R: number; ctx: number; kv: KvDtype;
  norm: { eps: number; plusOne: boolean } | null; bias: boolean;
}

/** Threads per head: rms_norm's for a row of D (so the norm's sum of squares rounds as rms_norm's does). */
function wgOf(D: number, maxInvocations: number): number { return Math.min(maxInvocations, D >= 256 ? 256 : D >= 128 ? 128 : 64); }

function dimsOf(a: RopeKvArgs) {
  const d = new Uint32Array([a.H, a.KV, a.D, a.R, a.table.shape[1]!, a.ctx, 0, 0]);
  new Float32Array(d.buffer)[6] = a.norm?.eps ?? 0;
  return uniformOf(d);
}

/** The reference's dims of rope_kv's arguments (rope_kv's ref and qkv_rope's). */
export function refDims(a: RopeKvArgs): RopeKvDims {
  return { H: a.H, KV: a.KV, D: a.D, R: a.R, P: a.table.shape[1]!, ctx: a.ctx, eps: a.norm?.eps ?? 0, plusOne: a.norm?.plusOne ?? false, norm: a.norm !== null, bias: a.bias, kv: a.kv };
}

export const ropeKvOp = op<RopeKvArgs>({
  name: 'rope_kv',
  check(a) {
    const { H, KV, D, R } = a, KVD = KV * D;
    if (a.q.cols !== H * D || a.k.cols !== KVD || a.v.cols !== KVD || R % 2 || R > D || a.table.shape[2] !== R / 2 || (a.kv !== 'f32' && D % 2))
      throw new ShapeError(`rope_kv: bad shapes (q ${a.q.cols}, k ${a.k.cols}, v ${a.v.cols} columns; H ${H}, KV ${KV}, head dim ${D}, rotary dim ${R}, cache ${a.kv})`);
    const want = kvCols(a.ctx, KVD, a.kv);
    if (a.kc.cols !== want || a.vc.cols !== want) throw new ShapeError(`rope_kv: cache width ${a.kc.cols} ≠ ${want} (ctx ${a.ctx} × ${KVD} as ${a.kv})`);
    const auxLen = (a.norm ? 2 * D : 0) + (a.bias ? H * D + 2 * KVD : 0);
    if ((auxLen > 0) !== (a.aux !== null) || (a.aux && a.aux.shape[0] !== auxLen)) throw new ShapeError(`rope_kv: aux of ${a.aux?.shape[0] ?? 0} values, want ${auxLen}`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const WG = wgOf(a.D, c.adapter.maxInvocations), n = c.step.n, heads = a.H + 2 * a.KV, wb = a.kv === 'f32' ? 4 : 2;
        return [{
          kernel: KERNEL, grid: grid(n * heads),
          defines: { WG, DPT: Math.ceil(a.D / WG), QK_NORM: a.norm !== null, PLUS_ONE: a.norm?.plusOne ?? false, BIAS: a.bias, KV16: a.kv !== 'f32', KV_F16: a.kv === 'f16' },
          cost: { flops: n * (a.H + a.KV) * (3 * a.R + (a.norm ? 4 * a.D : 0)), bytes: n * a.D * (8 * a.H + (4 + wb) * 2 * a.KV) + 6 * n * a.R * (a.H + a.KV) },
          bind: { q: a.q, k: a.k, v: a.v, kc: a.kc, vc: a.vc, table: a.table, aux: a.aux, dims: dimsOf(a) },
        }];
      },
    },
  },
  ref: (a, h) => {
    const d = refDims(a);
    ropeKvRef(h.data(a.q), h.data(a.k), h.data(a.v), h.data(a.kc), h.data(a.vc), h.data(a.table), a.aux ? h.data(a.aux) : null, h.step.cursors, h.step.ids.length, d);
  },
});

/** q (in place) ← RoPE(norm(q + qb)); caches kc, vc ← RoPE(norm(k + kb)), v + vb at each token's position. */
export function ropeKv(o: Backend, a: RopeKvArgs): Promise<void> {
  return o.run(ropeKvOp, a);
}
