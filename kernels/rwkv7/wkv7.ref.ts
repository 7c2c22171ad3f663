// CPU reference of the RWKV7 time-mix core for one layer (spec §1.3 steps 5–11), token by token:
// value residual, kk normalisation, key update, the generalized delta-rule recurrence, GroupNorm,
// bonus term and output gate. Produces y = (GroupNorm(o) + bonus·v) ⊙ g, the o_proj input.
import type { Cursor } from '../../src/util/step.ts';

export interface Wkv7Dims { C: number; D: number; cap: number; first: boolean; fuseNorm: boolean; gnEps: number }

/**
 * proj [6, cap, C]: planes r, w (log-decay), k, v, a, g.  vfirst [N, C]: written when `first`, else read.
 * vmix [N, C]: value-residual gate m (ignored when first).  params [5, C]: k_k, k_a, r_k, g_norm.weight, g_norm.bias.
 * state [slots, H, D, D] f32, S[i][j] with key index i.  y [N, C].
 */
export function wkv7Ref(proj: Float32Array, vfirst: Float32Array, vmix: Float32Array, params: Float32Array,
  state: Float32Array, y: Float32Array, cursors: Cursor[], d: Wkv7Dims): void {
  const { C, D, cap } = d;
  const H = C / D;
  const P = (p: number, t: number, c: number) => proj[p * cap * C + t * C + c]!;
  const kk = new Float64Array(D), kt = new Float64Array(D), v = new Float64Array(D), u = new Float64Array(D), o = new Float64Array(D);
  for (const cur of cursors) {
    for (let t = cur.start; t < cur.start + cur.len; t++) {
      for (let h = 0; h < H; h++) {
        const S = state.subarray((cur.slot * H + h) * D * D, (cur.slot * H + h + 1) * D * D);
        let ss = 0, bonus = 0;
        for (let i = 0; i < D; i++) {
          const c = h * D + i;
          let vv = P(3, t, c);
          if (d.first) vfirst[t * C + c] = vv;
          else { const m = vmix[t * C + c]!, vf = vfirst[t * C + c]!; vv = Math.abs(m) < 0.5 ? vv + m * (vf - vv) : vf - (vf - vv) * (1 - m); }
          v[i] = vv;
          const k = P(2, t, c), a = P(4, t, c);
          kk[i] = k * params[c]!;
          ss += kk[i]! * kk[i]!;
          kt[i] = k * (1 + (a - 1) * params[C + c]!);
          bonus += P(0, t, c) * kt[i]! * params[2 * C + c]!;
        }
        const inv = d.fuseNorm ? 1 / Math.sqrt(ss + 1e-6) : 1 / Math.max(Math.sqrt(ss), 1e-12);
        for (let i = 0; i < D; i++) kk[i]! *= inv;
        u.fill(0);
        for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) u[j]! += -kk[i]! * S[i * D + j]!;
        o.fill(0);
        for (let i = 0; i < D; i++) {
          const c = h * D + i;
          const decay = Math.exp(P(1, t, c)), beta = kk[i]! * P(4, t, c), r = P(0, t, c);
          for (let j = 0; j < D; j++) {
            const s = Math.fround(decay * S[i * D + j]! + beta * u[j]! + kt[i]! * v[j]!);
            S[i * D + j] = s;
            o[j]! += r * s;
          }
        }
        let mu = 0;
        for (let j = 0; j < D; j++) mu += o[j]!;
        mu /= D;
        let vr = 0;
        for (let j = 0; j < D; j++) vr += (o[j]! - mu) ** 2;
        const gi = 1 / Math.sqrt(vr / D + d.gnEps);
        for (let j = 0; j < D; j++) {
          const c = h * D + j;
          const on = (o[j]! - mu) * gi * params[3 * C + c]! + params[4 * C + c]!;
          y[t * C + c] = (on + bonus * v[j]!) * P(5, t, c);
        }
      }
    }
  }
}
