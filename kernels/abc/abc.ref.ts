// CPU reference of ABC's bounded-memory recurrence (spec-rwkv7-gla-abc.md §3.3 step 5, full-forward semantics of
// §3.4: z carries across calls and restarts only at a sequence's first token), token by token, per head:
//   s ← clamp(s, lo, hi);  first token: z = s, α = 0, β = 1;  else z' = logaddexp(z, s), α = e^{z−z'}, β = e^{s−z'}
//   Hk[i][m] = α_m·Hk[i][m] + k_i·β_m;  ok_m = Σ_i (scale·q_i)·Hk[i][m];  p = softmax_m(ok)
//   Hv[m][j] = α_m·Hv[m][j] + β_m·v_j;  o_j = Σ_m p_m·Hv[m][j]
// q, k arrive already rotated (RoPE is its own op). Produces o [N, H·DV] (before the gated output norm).
import type { Cursor } from '../../src/util/step.ts';

export interface AbcDims { H: number; DK: number; DV: number; M: number; scale: number; clampMin: number; clampMax: number }

/** f32 state per slot: Hk [H, DK, M], then Hv [H, M, DV], then z [H, M]. */
export function abcStateCols(d: { H: number; DK: number; DV: number; M: number }): number {
  return d.H * (d.DK * d.M + d.M * d.DV + d.M);
}

export const logaddexp = (a: number, b: number) => { const m = Math.max(a, b); return m + Math.log1p(Math.exp(-Math.abs(a - b))); };

/** q, k [N, H·DK]; v [N, H·DV]; s [N, H·M] slot logits; state [slots, abcStateCols]; o [N, H·DV]. */
export function abcRef(q: Float32Array, k: Float32Array, v: Float32Array, s: Float32Array, state: Float32Array, o: Float32Array,
  cursors: Cursor[], d: AbcDims): void {
  const { H, DK, DV, M } = d;
  const SLOT = abcStateCols(d);
  const al = new Float64Array(M), be = new Float64Array(M), ok = new Float64Array(M), acc = new Float64Array(DV);
  for (const cur of cursors) {
    const sb = cur.slot * SLOT;
    for (let t = cur.start; t < cur.start + cur.len; t++) {
      const first = (cur.pos ?? 0) === 0 && t === cur.start;
      for (let h = 0; h < H; h++) {
        const Hk = state.subarray(sb + h * DK * M, sb + (h + 1) * DK * M);
        const Hv = state.subarray(sb + H * DK * M + h * M * DV, sb + H * DK * M + (h + 1) * M * DV);
        const Z = state.subarray(sb + H * (DK * M + M * DV) + h * M, sb + H * (DK * M + M * DV) + (h + 1) * M);
        for (let m = 0; m < M; m++) {
          const sv = Math.min(Math.max(s[t * H * M + h * M + m]!, d.clampMin), d.clampMax);
          if (first) { Z[m] = sv; al[m] = 0; be[m] = 1; continue; }
          const z = Math.fround(logaddexp(Z[m]!, sv));
          al[m] = Math.exp(Z[m]! - z);
          be[m] = Math.exp(sv - z);
          Z[m] = z;
        }
        ok.fill(0);
        for (let i = 0; i < DK; i++) {
          const qi = Math.fround(d.scale * q[t * H * DK + h * DK + i]!), ki = k[t * H * DK + h * DK + i]!;
          for (let m = 0; m < M; m++) {
            const x = Math.fround(al[m]! * Hk[i * M + m]! + ki * be[m]!);
            Hk[i * M + m] = x;
            ok[m]! += qi * x;
          }
        }
        let mx = -Infinity, sum = 0;
        for (let m = 0; m < M; m++) mx = Math.max(mx, ok[m]!);
        for (let m = 0; m < M; m++) { ok[m] = Math.exp(ok[m]! - mx); sum += ok[m]!; }
        acc.fill(0);
        for (let m = 0; m < M; m++) {
          const p = ok[m]! / sum;
          for (let j = 0; j < DV; j++) {
            const x = Math.fround(al[m]! * Hv[m * DV + j]! + be[m]! * v[t * H * DV + h * DV + j]!);
            Hv[m * DV + j] = x;
            acc[j]! += p * x;
          }
        }
        for (let j = 0; j < DV; j++) o[t * H * DV + h * DV + j] = acc[j]!;
      }
    }
  }
}
