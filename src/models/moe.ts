// The routed experts of the MoE models (qwen3_next, qwen3_moe): one layer's experts read from either checkpoint
// layout into one gate|up tensor [E, 2I, C] and one down tensor [E, C, I], and the routed forward (router → top-k on
// the GPU → only the chosen experts). spec-deltanet-attention-qwen3next.md §8.6.
import { expertWeights, moeExperts, sharedExpert, type ExpertWeights, type SharedExpert } from '../../kernels/moe/moe_experts.ts';
import { selCols } from '../../kernels/moe/moe_topk.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { matmulFp8Multi } from '../../kernels/matmul/matmul_fp8.ts';
import { matmulMulti, MULTI_MAX_PARTS, type MultiPart } from '../../kernels/matmul/matmul_gemv_multi.ts';
import { siluMul } from '../../kernels/elementwise/silu_mul.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import { mlp, type MlpWeights } from './blocks.ts';
import type { Backend, HostWeight, Tensor, Weight } from '../backend/backend.ts';
import { dequantFp8 } from '../load/safetensors.ts';
import type { WeightReader } from '../load/weights.ts';

/**
 * Stack host matrices (each [R_i, C]) into one [ΣR_i, C] tensor `shape`: fp8 when all are fp8 with the same blocks
 * (each keeps its scale rows: rp = R of a part, all equal), 16-bit when all share a 16-bit dtype, f32 otherwise;
 * synthetic (fla bench) when any part is.
 */
export function stackRows(parts: HostWeight[], shape: number[]): HostWeight {
  const C = shape.at(-1)!, rowsOf = (w: HostWeight) => w.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const total = parts.reduce((n, w) => n + rowsOf(w) * C, 0);
  // fla bench's synthetic weights: random values of the stacked shape (an fp8 one keeps its parts' scale rows)
  const syn = parts.find(w => w.synthetic);
  if (syn) {
    const fp8 = parts.every(w => w.dtype === 'fp8' && rowsOf(w) === rowsOf(parts[0]!));
    return { shape, dtype: fp8 ? 'fp8' : 'bf16', synthetic: syn.synthetic, ...(fp8 ? { fp8Parts: rowsOf(parts[0]!) } : {}) };
  }
  const f0 = parts[0]!.fp8;
  if (f0 && parts.every(w => w.fp8 && w.fp8.br === f0.br && w.fp8.bc === f0.bc && rowsOf(w) === rowsOf(parts[0]!))) {
    const bytes = new Uint8Array(total), scale = new Float32Array(parts.reduce((n, w) => n + w.fp8!.scale.length, 0));
    let b = 0, s = 0;
    for (const w of parts) { bytes.set(w.fp8!.bytes, b); b += w.fp8!.bytes.length; scale.set(w.fp8!.scale, s); s += w.fp8!.scale.length; }
    return { shape, dtype: 'fp8', fp8: { bytes, scale, rp: rowsOf(parts[0]!), br: f0.br, bc: f0.bc } };
  }
  const dt = parts[0]!.dtype;
  if ((dt === 'bf16' || dt === 'f16') && parts.every(w => w.bits16 && w.dtype === dt)) {
    const out = new Uint16Array(total);
    let o = 0;
    for (const w of parts) { out.set(w.bits16!, o); o += w.bits16!.length; }
    return { shape, dtype: dt, bits16: out };
  }
  const out = new Float32Array(total);
  let o = 0;
  for (const w of parts) {
    const f = w.f32 ?? (w.fp8 ? dequantFp8(w.fp8, rowsOf(w), C) : widen(w));
    out.set(f, o);
    o += f.length;
  }
  return { shape, dtype: 'f32', f32: out };
}

function widen(w: HostWeight): Float32Array {
  const out = new Float32Array(w.bits16!.length);
  if (w.dtype === 'bf16') { const u = new Uint32Array(out.buffer); w.bits16!.forEach((b, i) => { u[i] = b << 16; }); return out; }
  const h = new Float16Array(w.bits16!.buffer, w.bits16!.byteOffset, w.bits16!.length);
  for (let i = 0; i < h.length; i++) out[i] = h[i]!;
  return out;
}

/**
 * One layer's E experts (intermediate I, hidden C) under `p` (e.g. model.layers.0.mlp.experts): transformers 5's fused
 * gate_up_proj [E, 2I, C] / down_proj [E, C, I], or per expert p.e.{gate,up,down}_proj.weight (fp8 with scales kept).
 */
export function loadExperts(r: WeightReader, o: Backend, p: string, E: number, I: number, C: number): ExpertWeights {
  if (r.has(`${p}.gate_up_proj`)) {
    // fla bench's synthetic fp8 experts take the scale layout of the published per-expert checkpoints (parts of I
    // gate or up rows, C down rows), as the branch below builds it
    const parts = (w: HostWeight, rp: number): HostWeight => (w.synthetic && w.dtype === 'fp8' && w.fp8Parts === undefined ? { ...w, fp8Parts: rp } : w);
    const gu = parts(r.readQ(`${p}.gate_up_proj`, [E, 2 * I, C]), I), dn = parts(r.readQ(`${p}.down_proj`, [E, C, I]), C);
    return expertWeights(o, p, gu, dn, E, I, C);
  }
  const gu: HostWeight[] = [], dn: HostWeight[] = [];
  for (let e = 0; e < E; e++) {
    gu.push(r.readQ(`${p}.${e}.gate_proj.weight`, [I, C]), r.readQ(`${p}.${e}.up_proj.weight`, [I, C]));
    dn.push(r.readQ(`${p}.${e}.down_proj.weight`, [C, I]));
  }
  // gate|up per expert: the scale parts are I rows each (gate, then up), down parts C rows
  return expertWeights(o, p, stackRows(gu, [E, 2 * I, C]), stackRows(dn, [E, C, I]), E, I, C);
}

/**
 * The shared expert under `p` (e.g. model.layers.0.mlp.shared_expert): gate_proj and up_proj [I, C] stacked into one
 * gate|up tensor [2I, C] (fp8 kept with its scales), down_proj [C, I].
 */
export function loadSharedExpert(r: WeightReader, o: Backend, p: string, I: number, C: number): SharedExpert {
  const gu = stackRows([r.readQ(`${p}.gate_proj.weight`, [I, C]), r.readQ(`${p}.up_proj.weight`, [I, C])], [2 * I, C]);
  return sharedExpert(o, p, gu, r.readQ(`${p}.down_proj.weight`, [C, I]), I, C);
}

/**
 * The router GEMV's weight: the router [E, C], with a shared expert's gate [1, C] as one more row (its logit then
 * lands in the last column, which moe_topk turns into the gate).
 */
export function loadRouter(r: WeightReader, o: Backend, p: string, E: number, C: number, sharedGate: string | null): Weight {
  const parts = [r.read(`${p}.weight`, [E, C]), ...(sharedGate ? [r.read(sharedGate, [1, C])] : [])];
  return o.weight(`${p}.weight${sharedGate ? '|shared_expert_gate' : ''}`, parts.length === 1 ? parts[0]! : stackRows(parts, [E + 1, C]), true);
}

/**
 * x += Σ_j w_j(h)·SwiGLU_{e_j}(h) over each token's top-k experts (router softmax, top-k, optional renormalisation),
 * + σ(h·W_sg)·SwiGLU_shared(h) with a shared expert (its gate the router's last row), for h = RMSNorm(x)·norm.w
 * (an f32 weight; zero-centred norms add the 1 at load). Three dispatches at decode on adapters with subgroups: the
 * router GEMV with the norm in its prologue, the experts' gate|up (the top-k and the norm again in its prologue),
 * their down projections (the top-k again) with the combine and residual add; elsewhere moe_topk runs between. `h` receives the normed rows where a path needs them (prefill).
 */
export async function routedExperts(o: Backend, router: Weight, experts: ExpertWeights, K: number, normTopk: boolean, x: Tensor, h: Tensor,
  norm: { w: Weight; eps: number }, shared: SharedExpert | null = null): Promise<void> {
  const logits = o.act('moe_logits', router.shape[0]!), sel = o.act('moe_sel', selCols(K, shared !== null));
  await matmulMulti(o, x, { ...norm, h }, [{ w: router, y: logits }]);
  await moeExperts(o, x, sel, experts, x, K, shared, { ...norm, h }, { logits, normTopk });   // routes itself (top-k in its prologue at decode)
}

/** Whether any of the weights is fp8 (matmul_multi, which fuses norms and sibling projections, reads none). */
export const hasFp8 = (...ws: Weight[]) => ws.some(w => w.dtype === 'fp8');

/**
 * y_p = act_p(RMSNorm(x)·norm.w · W_pᵀ) for sibling projections (no bias) of one input, the norm inside the GEMVs:
 * the fp8 parts through matmul_fp8_multi (two a dispatch), the others through matmul_multi (three a dispatch; each
 * call applies the norm itself). h receives the normed rows where a path needs them (prefill).
 */
export async function normedProjections(o: Backend, x: Tensor, h: Tensor, norm: { w: Weight; eps: number }, parts: MultiPart[]): Promise<void> {
  const n = { ...norm, h }, fp8 = parts.filter(p => p.w.dtype === 'fp8'), rest = parts.filter(p => p.w.dtype !== 'fp8');
  if (fp8.length) await matmulFp8Multi(o, x, n, fp8);
  for (let i = 0; i < rest.length; i += MULTI_MAX_PARTS) await matmulMulti(o, x, n, rest.slice(i, i + MULTI_MAX_PARTS));
}

/** x += the dense SwiGLU MLP of RMSNorm(x)·norm.w, the norm inside the gate|up GEMV. */
export async function denseMlp(o: Backend, w: MlpWeights, x: Tensor, h: Tensor, norm: { w: Weight; eps: number }): Promise<void> {
  if (w.gb || w.ub) {
    await rmsNorm(o, x, norm.w, h, { eps: norm.eps });
    return mlp(o, w, h, x);
  }
  const I = w.gate.shape[0]!, g = o.act('mlp_g', I), u = o.act('mlp_u', I), gu = o.act('mlp_gu', I);
  await normedProjections(o, x, h, norm, [{ w: w.gate, y: g }, { w: w.up, y: u }]);
  await siluMul(o, g, u, gu);
  await matmul(o, gu, w.down, w.db, 'none', x, true);
}

/** An RMSNorm weight as f32 (the fused prologues take f32), with the 1 of a zero-centred norm (1 + w) added. */
export function normWeight(r: WeightReader, o: Backend, name: string, C: number, plusOne: boolean): Weight {
  const w = r.read(name, [C]), f = Float32Array.from(w.f32 ?? widen(w));
  if (plusOne) for (let i = 0; i < C; i++) f[i] = Math.fround(1 + f[i]!);
  return o.weight(name, { shape: [C], dtype: 'f32', f32: f }, false);
}
