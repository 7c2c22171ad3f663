// Shared by the fla delta-rule families (gated_deltanet.ts, delta_net.ts): the fla block skeleton
// (spec-deltanet-attention-qwen3next.md §2) around a delta-rule token mixer (§3.3 / §4.3).
import { convState } from '../../kernels/conv/short_conv.ts';
import { deltaRule, deltaState, type DeltaDims, type QkAct } from '../../kernels/delta/delta_rule.ts';
import { embed } from '../../kernels/embed/embed.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { matmulMulti } from '../../kernels/matmul/matmul_gemv_multi.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Backend, HostWeight, StateSpec, Tensor, Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import type { WeightReader } from '../load/weights.ts';
import { bf16ToF32, f16ToF32 } from '../util/dtype.ts';
import { FormatError } from '../util/errors.ts';
import type { HeadArgmax, ModelDims } from './arch.ts';
import { headRmsNorm, loadHead, loadMlp, logits, mlp, type MlpWeights } from './blocks.ts';

/** What the two families have in common once their configs are read. */
export interface DeltaModelConfig {
  hidden_size: number; num_hidden_layers: number; vocab_size: number; intermediate_size: number;
  norm_eps: number; tie_word_embeddings: boolean;
  /** mixer shape */
  H: number; HV: number; DK: number; DV: number;
  use_gate: boolean; use_short_conv: boolean; conv_size: number;
  /** gated (GDN) decay from a_proj/A_log/dt_bias */
  decay: boolean; use_beta: boolean; allow_neg_eigval: boolean;
  qk_activation: QkAct; qk_norm: 'l2' | 'sum';
}

type Json = Record<string, unknown>;

/** Fields of the fla skeleton (§2): sizes, MLP width, norms, embeddings, refused options. */
export function parseSkeleton(j: Json, where: string) {
  const d = int(j, 'hidden_size', where, 2048);
  if (j.attn !== undefined && j.attn !== null) unsupported(where, 'attn', j.attn, 'null (hybrid attention layers are not implemented)');
  if (j.attnres_block_size !== undefined && j.attnres_block_size !== null)
    unsupported(where, 'attnres_block_size', j.attnres_block_size, 'null (attention residuals are not implemented)');
  const act = str(j, 'hidden_act', where, 'swish');
  if (act !== 'swish') unsupported(where, 'hidden_act', act, '"swish"');
  const I = optInt(j, 'intermediate_size', where) ?? 256 * Math.ceil(Math.trunc(d * num(j, 'hidden_ratio', where, 4) * 2 / 3) / 256);
  return {
    hidden_size: d, num_hidden_layers: int(j, 'num_hidden_layers', where, 24), vocab_size: int(j, 'vocab_size', where, 32000),
    intermediate_size: I, norm_eps: num(j, 'norm_eps', where, 1e-6), tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false),
  };
}

export function deltaDims(c: DeltaModelConfig): ModelDims {
  return { hidden: c.hidden_size, vocab: c.vocab_size, maxContext: null };
}

const mixerDims = (c: DeltaModelConfig): DeltaDims => ({
  H: c.H, HV: c.HV, DK: c.DK, DV: c.DV, qkNorm: c.qk_norm,
  // with the short conv, SiLU on q/k happens in the conv; other activations come after it (§4.3 step 3)
  qkAct: c.use_short_conv && c.qk_activation === 'silu' ? 'none' : c.qk_activation,
  vSilu: !c.use_short_conv, negEig: c.allow_neg_eigval,
});

export function deltaStates(c: DeltaModelConfig): StateSpec[] {
  const out: StateSpec[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    if (c.use_short_conv) out.push(convState(`${l}.conv`, 2 * c.H * c.DK + c.HV * c.DV, c.conv_size));   // one history over q|k|v
    out.push(deltaState(`${l}.S`, c));
  }
  return out;
}

/**
 * Where each projection sits in the packed projection row of a layer, q|k|v|z|a|b (z, a, b where the family has
 * them): one matrix, so the layer's pre-norm and all its projections are one GEMV at decode.
 */
export function projLayout(c: DeltaModelConfig) {
  const KD = c.H * c.DK, VD = c.HV * c.DV;
  const z = 2 * KD + VD, a = z + (c.use_gate ? VD : 0), b = a + (c.decay ? c.HV : 0), cols = b + (c.use_beta ? c.HV : 0);
  return { q: 0, k: KD, v: 2 * KD, z, a, b, cols, qkv: 2 * KD + VD };
}

interface Layer {
  attn_norm: Weight; mlp_norm: Weight;
  /** q|k|v|z|a|b stacked [projLayout.cols, d]; the q|k|v convs stacked [qkv, 1, W] */
  proj: Weight; conv: Weight | null;
  gp: Weight | null; o_norm: Weight; o: Weight;
  mlp: MlpWeights;
}
export interface DeltaWeights { emb: Weight; layers: Layer[]; norm: Weight; head: Weight }

/** Matrices with the same columns stacked by rows (one dtype: mixed ones are widened to f32). */
function stackRows(ws: HostWeight[], cols: number): HostWeight {
  const rows = ws.reduce((n, w) => n + w.shape[0]!, 0), shape = [rows, cols];
  const first = ws[0]!;
  if (ws.every(w => w.synthetic)) return { shape, dtype: first.dtype, synthetic: first.synthetic };   // fla bench
  if (ws.every(w => w.bits16 && w.dtype === first.dtype)) {
    const out = new Uint16Array(rows * cols);
    let at = 0;
    for (const w of ws) { out.set(w.bits16!, at); at += w.bits16!.length; }
    return { shape, dtype: first.dtype, bits16: out };
  }
  const out = new Float32Array(rows * cols);
  let at = 0;
  for (const w of ws) {
    const f = w.f32 ?? (w.dtype === 'bf16' ? bf16ToF32(w.bits16!) : w.dtype === 'f16' ? f16ToF32(w.bits16!) : null);
    if (!f) throw new FormatError(`cannot stack a ${w.dtype} matrix with the layer's other projections`);
    out.set(f, at);
    at += f.length;
  }
  return { shape, dtype: 'f32', f32: out };
}

export function loadDelta(c: DeltaModelConfig, r: WeightReader, o: Backend): DeltaWeights {
  const d = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, KD = c.H * c.DK, VD = c.HV * c.DV, W = c.conv_size;
  const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
  r.ignore(n => /^model\.layers\.\d+\.attn\.D$/.test(n));   // unused parameter of checkpoints before fla 834989cc (§11.16)
  const layers: Layer[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`, a = `${p}attn.`;
    const parts: [string, number][] = [['q_proj', KD], ['k_proj', KD], ['v_proj', VD]];
    if (c.use_gate) parts.push(['g_proj', VD]);
    if (c.decay) parts.push(['a_proj', c.HV]);
    if (c.use_beta) parts.push(['b_proj', c.HV]);
    const proj = stackRows(parts.map(([n, rows]) => r.read(`${a}${n}.weight`, [rows, d])), d);
    let conv: Weight | null = null;
    if (c.use_short_conv) {
      const taps = new Float32Array((2 * KD + VD) * W);
      let at = 0;
      for (const [n, C] of [['q', KD], ['k', KD], ['v', VD]] as const) { taps.set(r.f32(`${a}${n}_conv1d.weight`, [C, 1, W]), at); at += C * W; }
      conv = o.weight(`${a}q|k|v_conv1d.weight`, { shape: [2 * KD + VD, 1, W], dtype: 'f32', f32: taps }, false);
    }
    layers.push({
      attn_norm: vec(`${p}attn_norm.weight`, [d]), mlp_norm: vec(`${p}mlp_norm.weight`, [d]),
      proj: o.weight(`${a}${parts.map(([n]) => n).join('|')}.weight`, proj, true), conv,
      gp: c.decay ? o.weight(`${a}A_log|dt_bias`, r.stack([`${a}A_log`, `${a}dt_bias`], c.HV), false) : null,
      o_norm: vec(`${a}o_norm.weight`, [c.DV]), o: o.weight(`${a}o_proj.weight`, r.read(`${a}o_proj.weight`, [d, VD]), true),
      mlp: loadMlp(r, o, `${p}mlp`, d, I),
    });
  }
  const emb = o.weight('model.embeddings.weight', r.read('model.embeddings.weight', [V, d]), true);
  return { emb, layers, norm: vec('model.norm.weight', [d]), head: loadHead(r, o, emb, c.tie_word_embeddings, V, d) };
}

/**
 * Per layer: x → attn_norm and every projection (one GEMV at decode) → one short conv over q|k|v (its history
 * updated in place) → the delta rule with o_norm (and the g gate) in its epilogue → o_proj added into x → MLP.
 */
export async function forwardDelta(o: Backend, w: DeltaWeights, c: DeltaModelConfig, pick?: HeadArgmax): Promise<Tensor> {
  const d = c.hidden_size, VD = c.HV * c.DV, eps = c.norm_eps;
  const md = mixerDims(c), lay = projLayout(c);
  const x = o.act('x', d), h = o.act('h', d);
  const P = o.act('proj', lay.cols), qkv = c.use_short_conv ? o.act('qkv', lay.qkv) : P, yn = o.act('yn', VD);
  await embed(o, w.emb, x);
  for (let l = 0; l < w.layers.length; l++) {
    const L = w.layers[l]!;
    await matmulMulti(o, x, { w: L.attn_norm, eps, h }, [{ w: L.proj, y: P }]);
    // with the short conv, SiLU on q/k happens in it only for qk_activation silu; v always takes it (§4.3 step 2)
    // the delta rule runs the conv ahead of itself (in its decode kernel's prologue where it fits)
    const conv = L.conv ? { x: P, w: L.conv, state: o.state(`${l}.conv`), act: c.qk_activation === 'silu' ? 'silu' as const : 'none' as const, siluFrom: lay.v } : null;
    await deltaRule(o, {
      q: qkv, k: qkv, v: qkv, a: c.decay ? P : null, gp: L.gp, b: c.use_beta ? P : null, state: o.state(`${l}.S`), out: yn, d: md,
      off: { q: lay.q, k: lay.k, v: lay.v, a: lay.a, b: lay.b }, norm: { w: L.o_norm, gate: c.use_gate ? P : null, gateOff: lay.z, eps }, conv,
    });
    await matmul(o, yn, L.o, null, 'none', x, true);
    await mlp(o, L.mlp, h, x, { w: L.mlp_norm, eps });   // the norm runs inside gate|up
  }
  return logits(o, x, w.head, headRmsNorm(o, w.norm, eps), pick);
}
