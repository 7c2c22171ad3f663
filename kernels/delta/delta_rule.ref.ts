// CPU reference of the (gated) delta rule over packed sequences, token by token (spec-deltanet-attention-qwen3next.md
// §1.5, §1.8, §3.3 steps 3–6, §4.3 steps 3–6). Per token and value head hv (q/k head ⌊hv / r⌋, r = HV / H):
//   q, k ← qkAct; then L2 (x / sqrt(Σx² + 1e−6)) or sum (x / Σx) normalised;  v ← vAct
//   g = −exp(A_log[hv])·softplus(a + dt_bias[hv]) (0 without gate);  β = σ(b) (1 without beta), ×2 if negEig
//   S ← e^g·S;  u = β·(v − Sᵀk);  S ← S + k·uᵀ;  o = Sᵀ(q·d_k^{−1/2})
// State S is f32 [slots, HV, d_k, d_v] (K-first, S[a][c] at a·d_v + c).
import type { Cursor } from '../../src/util/step.ts';

export type QkNorm = 'l2' | 'sum' | 'none';
export type QkAct = 'none' | 'silu' | 'relu' | 'elu';

export interface DeltaDims {
  H: number; HV: number; DK: number; DV: number;
  qkNorm: QkNorm; qkAct: QkAct; vSilu: boolean; negEig: boolean;
}

const silu = (x: number) => x / (1 + Math.exp(-x));
export function actRef(a: QkAct, x: number): number {
  switch (a) {
    case 'none': return x;
    case 'silu': return silu(x);
    case 'relu': return x > 0 ? x : 0;
    case 'elu': return x > 0 ? x + 1 : Math.exp(x);   // elu(x) + 1
  }
}
export const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** Normalise x in place (l2: eps 1e−6 inside the root, added to the sum; sum: divide by the sum). */
export function qkNormRef(x: Float64Array, norm: QkNorm): void {
  if (norm === 'none') return;
  let s = 0;
  for (const v of x) s += norm === 'l2' ? v * v : v;
  const f = norm === 'l2' ? 1 / Math.sqrt(s + 1e-6) : 1 / s;
  for (let i = 0; i < x.length; i++) x[i]! *= f;
}

/** The per-token log-decay g (≤ 0) and β of value head hv at row t. */
export function gateRef(a: Float32Array | null, b: Float32Array | null, gp: Float32Array | null, t: number, hv: number, HV: number, negEig: boolean): [number, number] {
  const g = a ? -Math.exp(gp![hv]!) * softplus(a[t * HV + hv]! + gp![HV + hv]!) : 0;
  let beta = b ? 1 / (1 + Math.exp(-b[t * HV + hv]!)) : 1;
  if (negEig) beta *= 2;
  return [g, beta];
}

/**
 * q, k [N, H·DK]; v [N, HV·DV]; a, b [N, HV] (raw gate / beta projections, null = absent); gp [2, HV] = A_log,
 * dt_bias (null without gate); state [slots, HV·DK·DV] f32; o [N, HV·DV].
 */
export function deltaRuleRef(q: Float32Array, k: Float32Array, v: Float32Array, a: Float32Array | null, b: Float32Array | null,
  gp: Float32Array | null, state: Float32Array, o: Float32Array, cursors: Cursor[], d: DeltaDims): void {
  const { H, HV, DK, DV } = d;
  const r = HV / H, scale = 1 / Math.sqrt(DK);
  const qh = new Float64Array(DK), kh = new Float64Array(DK), vh = new Float64Array(DV), p = new Float64Array(DV);
  for (const cur of cursors) {
    for (let t = cur.start; t < cur.start + cur.len; t++) {
      for (let hv = 0; hv < HV; hv++) {
        const h = Math.floor(hv / r);
        for (let i = 0; i < DK; i++) {
          qh[i] = actRef(d.qkAct, q[t * H * DK + h * DK + i]!);
          kh[i] = actRef(d.qkAct, k[t * H * DK + h * DK + i]!);
        }
        qkNormRef(qh, d.qkNorm);
        qkNormRef(kh, d.qkNorm);
        for (let c = 0; c < DV; c++) { const x = v[t * HV * DV + hv * DV + c]!; vh[c] = d.vSilu ? silu(x) : x; }
        const [g, beta] = gateRef(a, b, gp, t, hv, HV, d.negEig);
        const dec = Math.exp(g);
        const S = state.subarray((cur.slot * HV + hv) * DK * DV, (cur.slot * HV + hv + 1) * DK * DV);
        p.fill(0);
        for (let i = 0; i < DK; i++) for (let c = 0; c < DV; c++) { S[i * DV + c] = dec * S[i * DV + c]!; p[c]! += S[i * DV + c]! * kh[i]!; }
        for (let c = 0; c < DV; c++) p[c] = beta * (vh[c]! - p[c]!);
        for (let c = 0; c < DV; c++) {
          let s = 0;
          for (let i = 0; i < DK; i++) { S[i * DV + c] = S[i * DV + c]! + kh[i]! * p[c]!; s += S[i * DV + c]! * qh[i]!; }
          o[t * HV * DV + hv * DV + c] = s * scale;
        }
      }
    }
  }
}
