// Hugging Face Qwen3-Next (`qwen3_next`, Qwen3NextForCausalLM): spec-deltanet-attention-qwen3next.md §8.
// Hybrid layers by `layer_types`: Gated DeltaNet (§8.4) or gated softmax attention (§8.5); sparse MoE with a shared
// expert (§8.6) or a dense SwiGLU MLP; zero-centred RMSNorms (1 + w) everywhere except the GDN output norm.
// The grouped checkpoint layouts (in_proj_qkvz / in_proj_ba per key head, q_proj with query and gate interleaved per
// head, one conv over q|k|v) are split into plain per-part matrices at load time, so the forward uses the shared ops.
// The MoE routes on the GPU (moe_topk) and runs only the chosen experts (moe_experts: a GEMV over their rows for
// decode, a grouped GEMM over expert segments for prefill); the experts of a layer are one gate|up and one down tensor.
// FP8 checkpoints (F8_E4M3 + weight_scale_inv) keep their bytes on the GPU for the experts and the matrices that are
// not cut into parts; the cut ones (in_proj_qkvz/ba, q_proj) stay fp8 when each block of picked rows comes from one
// scale block. Decode of an fp8 checkpoint (GPU, subgroups): 6 dispatches per Gated DeltaNet layer (in_proj q|k|v|z|a|b
// with the conv in its epilogue, the delta rule, out_proj, the router, the experts' gate|up and down with the top-k in
// their prologue) and 7–8 per attention layer (q|gate|k|v in one GEMV, rope_kv, sdpa (+ its combine), o_proj of the
// gated attention, the same MoE); Qwen3-Next-80B-A3B: 318 per token at long context (was 426).
import { ropeKv, ropeKvAux } from '../../kernels/attention/rope_kv.ts';
import { kvCacheDtype, kvCtx, sdpa } from '../../kernels/attention/sdpa.ts';
import { convState, shortConv } from '../../kernels/conv/short_conv.ts';
import { deltaRule, deltaState, type DeltaDims } from '../../kernels/delta/delta_rule.ts';
import { mul } from '../../kernels/elementwise/mul.ts';
import type { ExpertWeights, SharedExpert } from '../../kernels/moe/moe_experts.ts';
import { embed } from '../../kernels/embed/embed.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { matmulMulti } from '../../kernels/matmul/matmul_gemv_multi.ts';
import { matmulFp8Conv, matmulFp8Gated, matmulFp8Seg } from '../../kernels/matmul/matmul_fp8.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Backend, HostWeight, StateSpec, Tensor, Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import { dequantFp8 } from '../load/safetensors.ts';
import type { WeightReader } from '../load/weights.ts';
import { defineArch } from './arch.ts';
import { denseMlp, loadExperts, loadRouter, loadSharedExpert, normedProjections, normWeight, routedExperts, stackRows } from './moe.ts';
import { attnState, headRmsNorm, hostF32, loadHead, loadMlp, logits, mlp, ropeConfig, type AttnConfig, type MlpWeights } from './blocks.ts';
import { invFreq, ropeTable } from '../../kernels/attention/rope.ref.ts';

/** Positions of the RoPE table: the published 262 144-token context (only R = D/4 rotary dims, so 67 MB at most). */
const MAX_POS = 262144;

type LayerType = 'linear_attention' | 'full_attention';

export interface Qwen3NextConfig {
  hidden_size: number; num_hidden_layers: number; vocab_size: number; rms_norm_eps: number; tie_word_embeddings: boolean;
  max_position_embeddings: number; attention_bias: boolean;
  layer_types: LayerType[];
  /** per layer: sparse MoE (true) or dense MLP of intermediate_size */
  moe: boolean[];
  intermediate_size: number;
  attn: AttnConfig;
  /** Gated DeltaNet mixer */
  gdn: DeltaDims; conv_size: number;
  num_experts: number; num_experts_per_tok: number; norm_topk_prob: boolean;
  moe_intermediate_size: number; shared_expert_intermediate_size: number;
}

interface GdnWeights {
  /**
   * in_proj_qkvz's rows regrouped q|k|v|z and in_proj_ba's a|b stacked into one q|k|v|z|a|b (proj), or where they
   * cannot stack (fp8 and dequantized parts) the two apart (qkvz, ba); conv1d over q|k|v (conv, and aux = the input
   * norm's weight then the conv taps: the fused fp8 projection's prologue and epilogue)
   */
  proj: Weight | null; qkvz: Weight | null; ba: Weight | null; gp: Weight; conv: Weight; aux: Weight | null; norm: Weight; out: Weight;
}
interface GatedAttnWeights {
  /** fp8 checkpoints without biases: q | gate | k | v stacked in one weight (qgkv; the four null), else apart */
  qgkv: Weight | null; q: Weight | null; gate: Weight | null; k: Weight | null; v: Weight | null; o: Weight;
  /** o_proj is fp8: the gate product runs inside its GEMV (matmul_fp8_gated) */
  oFp8: boolean;
  qb: Weight | null; gb: Weight | null; kb: Weight | null; vb: Weight | null; ob: Weight | null;
  qn: Weight; kn: Weight; rope: Weight;
  aux: Weight;                                 // rope_kv's q/k norm weights and q/k/v biases (ropeKvAux)
}
interface MoeWeights { router: Weight; experts: ExpertWeights; shared: SharedExpert | null }
interface Layer {
  in_norm: Weight; post_norm: Weight;
  gdn: GdnWeights | null; attn: GatedAttnWeights | null;
  moe: MoeWeights | null; mlp: MlpWeights | null;
}
interface Weights { emb: Weight; layers: Layer[]; norm: Weight; head: Weight }

type Json = Record<string, unknown>;

/** Rows `rows` of a [*, cols] host weight (bf16/f16 bits or f32), as a new [rows.length, cols] weight. */
function pickRows(w: HostWeight, rows: number[], cols: number): HostWeight {
  const shape = rows.length === 1 && cols === 1 ? [1] : cols === 1 ? [rows.length] : [rows.length, cols];
  if (w.synthetic) return { shape, dtype: w.dtype, synthetic: { seed: w.synthetic.seed * 7919 + rows[0]! + 1, scale: w.synthetic.scale } };   // fla bench
  if (w.fp8) return pickFp8(w, rows, cols, shape);
  if (w.bits16) {
    const out = new Uint16Array(rows.length * cols);
    rows.forEach((r, i) => out.set(w.bits16!.subarray(r * cols, (r + 1) * cols), i * cols));
    return { shape, dtype: w.dtype, bits16: out };
  }
  const out = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => out.set(w.f32!.subarray(r * cols, (r + 1) * cols), i * cols));
  return { shape, dtype: 'f32', f32: out };
}

/**
 * Rows of an fp8 matrix: kept as fp8 when every block of br picked rows takes all its rows from one scale block of the
 * source (runs of whole blocks, or rows reordered inside one block, as in_proj_ba's 64 rows), so each block keeps its
 * scale row; otherwise dequantized to f32.
 */
function pickFp8(w: HostWeight, rows: number[], cols: number, shape: number[]): HostWeight {
  const f = w.fp8!, R = f.bytes.length / cols, SC = Math.ceil(cols / f.bc), blocks = Math.ceil(rows.length / f.br);
  const src = (b: number) => Math.floor(rows[b * f.br]! / f.br);
  const aligned = f.rp === R && rows.every((r, i) => Math.floor(r / f.br) === src(Math.floor(i / f.br)));
  if (!aligned) {
    const all = dequantFp8(f, R, cols), out = new Float32Array(rows.length * cols);
    rows.forEach((r, i) => out.set(all.subarray(r * cols, (r + 1) * cols), i * cols));
    return { shape, dtype: 'f32', f32: out };
  }
  const bytes = new Uint8Array(rows.length * cols), scale = new Float32Array(blocks * SC);
  rows.forEach((r, i) => bytes.set(f.bytes.subarray(r * cols, (r + 1) * cols), i * cols));
  for (let b = 0; b < blocks; b++) { const sr = src(b); scale.set(f.scale.subarray(sr * SC, (sr + 1) * SC), b * SC); }
  return { shape, dtype: 'fp8', fp8: { bytes, scale, rp: rows.length, br: f.br, bc: f.bc } };
}

/**
 * Matrices [R_i, C] stacked into one [ΣR_i, C]: fp8 when all are single-part fp8 of the same blocks and every part
 * but the last is whole scale blocks (the scale rows then simply follow each other); 16-bit / f32 as moe.ts's
 * stackRows; null when fp8 and other dtypes mix (the caller keeps the parts apart).
 */
function stackProj(parts: HostWeight[], C: number): HostWeight | null {
  const R = parts.reduce((n, w) => n + w.shape[0]!, 0), shape = [R, C];
  const fp8 = parts.filter(w => w.dtype === 'fp8').length;
  if (fp8 && fp8 < parts.length) return null;
  if (!fp8) return stackRows(parts, shape);
  if (parts.some(w => w.synthetic)) return { shape, dtype: 'fp8', synthetic: parts[0]!.synthetic ?? parts.find(w => w.synthetic)!.synthetic };
  const f0 = parts[0]!.fp8!;
  if (!parts.every((w, i) => w.fp8!.br === f0.br && w.fp8!.bc === f0.bc && w.fp8!.rp === w.shape[0] && (i === parts.length - 1 || w.shape[0]! % f0.br === 0))) return null;
  const bytes = new Uint8Array(R * C), scale = new Float32Array(parts.reduce((n, w) => n + w.fp8!.scale.length, 0));
  let b = 0, sc = 0;
  for (const w of parts) { bytes.set(w.fp8!.bytes, b); b += w.fp8!.bytes.length; scale.set(w.fp8!.scale, sc); sc += w.fp8!.scale.length; }
  return { shape, dtype: 'fp8', fp8: { bytes, scale, rp: R, br: f0.br, bc: f0.bc } };
}

const range = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);

/** Layer types from `layer_types`, or the legacy `full_attention_interval` (layer i is full iff (i+1) % interval == 0). */
function layerTypes(j: Json, L: number, where: string): LayerType[] {
  if (Array.isArray(j.layer_types)) {
    const t = j.layer_types as unknown[];
    if (t.length !== L || t.some(x => x !== 'linear_attention' && x !== 'full_attention'))
      unsupported(where, 'layer_types', j.layer_types, `${L} entries of "linear_attention" / "full_attention"`);
    return t as LayerType[];
  }
  const every = int(j, 'full_attention_interval', where, 4);
  return Array.from({ length: L }, (_, i) => ((i + 1) % every === 0 ? 'full_attention' : 'linear_attention'));
}

export default defineArch<Qwen3NextConfig, Weights>({
  modelTypes: ['qwen3_next'],

  parseConfig(j, where) {
    const d = int(j, 'hidden_size', where), L = int(j, 'num_hidden_layers', where);
    const act = str(j, 'hidden_act', where, 'silu');
    if (act !== 'silu') unsupported(where, 'hidden_act', act, '"silu"');
    const eps = num(j, 'rms_norm_eps', where, 1e-6);
    // full attention
    const H = int(j, 'num_attention_heads', where, 16), KV = optInt(j, 'num_key_value_heads', where) ?? H;
    if (H % KV) unsupported(where, 'num_key_value_heads', KV, `a divisor of num_attention_heads (${H})`);
    const D = optInt(j, 'head_dim', where) ?? d / H;
    if (!Number.isInteger(D)) unsupported(where, 'head_dim', D, 'an integer');
    const rp = (j.rope_parameters ?? j.rope_scaling ?? {}) as Json;
    const prf = num({ partial_rotary_factor: rp.partial_rotary_factor, ...j }, 'partial_rotary_factor', where, 0.25);
    const R = Math.trunc(D * prf);
    if (R < 2 || R % 2 || R > D) unsupported(where, 'partial_rotary_factor', prf, `a factor giving an even rotary dim in 2..${D}`);
    const { theta, scaling } = ropeConfig(j, where);
    const maxPos = int(j, 'max_position_embeddings', where, 32768);
    if (j.use_sliding_window === true) unsupported(where, 'use_sliding_window', true, 'false');
    // gated deltanet
    const Hk = int(j, 'linear_num_key_heads', where, 16), HV = int(j, 'linear_num_value_heads', where, 32);
    if (HV % Hk) unsupported(where, 'linear_num_value_heads', HV, `a multiple of linear_num_key_heads = ${Hk}`);
    const DK = int(j, 'linear_key_head_dim', where, 128), DV = int(j, 'linear_value_head_dim', where, 128);
    if (DK % 16 || DK > 512) unsupported(where, 'linear_key_head_dim', DK, 'a multiple of 16 up to 512');
    if (DV % 16) unsupported(where, 'linear_value_head_dim', DV, 'a multiple of 16');
    const W = int(j, 'linear_conv_kernel_dim', where, 4, 2);
    if (W > 17) unsupported(where, 'linear_conv_kernel_dim', W, '2..17');
    // MoE
    const E = int(j, 'num_experts', where, 512, 0), K = int(j, 'num_experts_per_tok', where, 10);
    if (E > 0 && K > E) unsupported(where, 'num_experts_per_tok', K, `at most num_experts = ${E}`);
    const step = int(j, 'decoder_sparse_step', where, 1);
    const mlpOnly = Array.isArray(j.mlp_only_layers) ? (j.mlp_only_layers as unknown[]) : [];
    const moe = Array.from({ length: L }, (_, i) => E > 0 && (i + 1) % step === 0 && !mlpOnly.includes(i));
    return {
      hidden_size: d, num_hidden_layers: L, vocab_size: int(j, 'vocab_size', where, 151936), rms_norm_eps: eps,
      tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false), max_position_embeddings: maxPos,
      attention_bias: bool(j, 'attention_bias', where, false), layer_types: layerTypes(j, L, where), moe,
      intermediate_size: int(j, 'intermediate_size', where, 5632),
      attn: { H, KV, D, R, theta, scaling, maxPos: Math.min(maxPos, MAX_POS), qkNormEps: eps, zeroCentred: true, window: 0 },
      gdn: { H: Hk, HV, DK, DV, qkNorm: 'l2', qkAct: 'none', vSilu: false, negEig: false }, conv_size: W,
      num_experts: E, num_experts_per_tok: K, norm_topk_prob: bool(j, 'norm_topk_prob', where, true),
      moe_intermediate_size: int(j, 'moe_intermediate_size', where, 512),
      shared_expert_intermediate_size: int(j, 'shared_expert_intermediate_size', where, 512, 0),
    };
  },

  dims(c) {
    return { hidden: c.hidden_size, vocab: c.vocab_size, maxContext: Math.min(c.max_position_embeddings, MAX_POS) };
  },

  state(c, ctx) {
    const out: StateSpec[] = [];
    const g = c.gdn, KD = g.H * g.DK;
    c.layer_types.forEach((t, l) => {
      if (t === 'full_attention') { out.push(...attnState(c.attn, l, ctx)); return; }
      out.push(convState(`${l}.conv`, 2 * KD + g.HV * g.DV, c.conv_size), deltaState(`${l}.S`, g));   // one history over q|k|v
    });
    return out;
  },

  load(c, r, o) {
    const d = c.hidden_size;
    const mat = (n: string, s: number[]) => o.weight(n, r.readQ(n, s), true);
    const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
    const table = o.weight('rope', { shape: [2, c.attn.maxPos, c.attn.R / 2], dtype: 'f32', f32: ropeTable(invFreq(c.attn.theta, c.attn.R, c.attn.scaling), c.attn.maxPos) }, false);
    r.ignore(n => n.startsWith('mtp.') || n.endsWith('rotary_emb.inv_freq'));
    const layers: Layer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`;
      const full = c.layer_types[l] === 'full_attention';
      layers.push({
        // zero-centred norms as f32 1 + w (the fused prologues take a plain weight)
        in_norm: normWeight(r, o, `${p}input_layernorm.weight`, d, true), post_norm: normWeight(r, o, `${p}post_attention_layernorm.weight`, d, true),
        gdn: full ? null : loadGdn(c, r, o, `${p}linear_attn.`, o.kind === 'gpu' ? hostF32(r.read(`${p}input_layernorm.weight`, [d])) : null),
        attn: full ? loadGatedAttn(c, r, o, `${p}self_attn.`, table) : null,
        moe: c.moe[l] ? loadMoe(c, r, o, `${p}mlp.`) : null,
        mlp: c.moe[l] ? null : loadMlp(r, o, `${p}mlp`, d, c.intermediate_size),
      });
    }
    const emb = o.weight('model.embed_tokens.weight', r.read('model.embed_tokens.weight', [c.vocab_size, d]), true);
    // the final norm as f32 1 + w too: in the head GEMV's prologue (headRmsNorm)
    return { emb, layers, norm: normWeight(r, o, 'model.norm.weight', d, true), head: loadHead(r, o, emb, c.tie_word_embeddings, c.vocab_size, d) };
  },

  async forward(o, w, c, pick) {
    const d = c.hidden_size, eps = c.rms_norm_eps;
    const x = o.act('x', d), h = o.act('h', d);
    await embed(o, w.emb, x);
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l]!;
      // the input norm runs inside the mixer's projections
      if (L.gdn) await gatedDeltaNet(o, L.gdn, c, l, x, h, { w: L.in_norm, eps });
      else await gatedAttention(o, L.attn!, c.attn, l, x, h, { w: L.in_norm, eps });
      // the post-attention norm runs inside the router GEMV and the experts' gate|up (or the MLP's gate|up)
      if (L.moe) await routedExperts(o, L.moe.router, L.moe.experts, c.num_experts_per_tok, c.norm_topk_prob, x, h, { w: L.post_norm, eps }, L.moe.shared);
      else await denseMlp(o, L.mlp!, x, h, { w: L.post_norm, eps });
    }
    return logits(o, x, w.head, headRmsNorm(o, w.norm, eps), pick);
  },
});

// ---- Gated DeltaNet (§8.2 linear-attention keys, §8.4) ----

function loadGdn(c: Qwen3NextConfig, r: WeightReader, o: Backend, a: string, inNorm: Float32Array | null): GdnWeights {
  const d = c.hidden_size, { H: Hk, HV, DK, DV } = c.gdn, rr = HV / Hk, KD = Hk * DK, VD = HV * DV, W = c.conv_size;
  const G = 2 * DK + 2 * rr * DV;
  const qkvz = r.readQ(`${a}in_proj_qkvz.weight`, [Hk * G, d]);
  const rowsOf = (off: (j: number) => number, n: number) => Array.from({ length: Hk }, (_, j) => range(j * G + off(j), n)).flat();
  const ba = r.readQ(`${a}in_proj_ba.weight`, [2 * HV, d]);
  const baRows = (first: number) => Array.from({ length: Hk }, (_, j) => range(j * 2 * rr + first, rr)).flat();
  const qkvzH = pickRows(qkvz, [...rowsOf(() => 0, DK), ...rowsOf(() => DK, DK), ...rowsOf(() => 2 * DK, rr * DV), ...rowsOf(() => 2 * DK + rr * DV, rr * DV)], d);
  const baH = pickRows(ba, [...baRows(rr), ...baRows(0)], d);
  const stacked = stackProj([qkvzH, baH], d);
  const convH = r.read(`${a}conv1d.weight`, [2 * KD + VD, 1, W]);
  // the fused fp8 projection reads the input norm's weight (1 + w, as normWeight) and then the conv taps from one buffer
  let aux: Weight | null = null;
  if (stacked?.dtype === 'fp8' && inNorm) {
    const f = new Float32Array(d + (2 * KD + VD) * W);
    for (let i = 0; i < d; i++) f[i] = Math.fround(1 + inNorm[i]!);
    f.set(hostF32(convH), d);
    aux = o.weight(`${a}input_layernorm|conv1d`, { shape: [f.length], dtype: 'f32', f32: f }, false);
  }
  return {
    proj: stacked ? o.weight(`${a}in_proj.q|k|v|z|a|b`, stacked, true) : null,
    qkvz: stacked ? null : o.weight(`${a}in_proj_qkvz.q|k|v|z`, qkvzH, true),
    ba: stacked ? null : o.weight(`${a}in_proj_ba.a|b`, baH, true),
    gp: o.weight(`${a}A_log|dt_bias`, r.stack([`${a}A_log`, `${a}dt_bias`], HV), false),
    conv: o.weight(`${a}conv1d.weight`, convH, false), aux,
    norm: o.weight(`${a}norm.weight`, r.read(`${a}norm.weight`, [DV]), false),
    out: o.weight(`${a}out_proj.weight`, r.readQ(`${a}out_proj.weight`, [d, VD]), true),
  };
}

/**
 * x += out_proj(gated RMSNorm(delta rule(conv(q|k|v)), z)) of h = RMSNorm(x)·norm.w: the stacked q|k|v|z|a|b
 * projection with the norm in its prologue — fp8: with the conv in its epilogue at decode (matmul_fp8_conv: one
 * dispatch), else one GEMV and one conv (q|k|v|z and a|b apart where they cannot stack: two GEMVs) — then the delta
 * rule with the gated norm and out_proj added into x.
 */
async function gatedDeltaNet(o: Backend, w: GdnWeights, c: Qwen3NextConfig, l: number, x: Tensor, h: Tensor, norm: { w: Weight; eps: number }): Promise<void> {
  const g = c.gdn, KD = g.H * g.DK, VD = g.HV * g.DV, AB = 2 * KD + 2 * VD;
  const qkv = o.act('gdn_qkv', 2 * KD + VD), yn = o.act('gdn_yn', VD), cs = o.state(`${l}.conv`);
  let p: Tensor, ab: Tensor, abOff: number;
  if (w.proj) {
    p = o.act('gdn_proj', AB + 2 * g.HV); ab = p; abOff = AB;
    if (w.proj.dtype === 'fp8' && w.aux) await matmulFp8Conv(o, x, { ...norm, h }, w.proj, p, { w: w.conv, aux: w.aux, state: cs, y: qkv, act: 'silu' });
    else {
      await normedProjections(o, x, h, norm, [{ w: w.proj, y: p }]);
      await shortConv(o, p, w.conv, cs, qkv, 'silu');   // the q|k|v columns of p
    }
  } else {
    p = o.act('gdn_qkvz', AB); ab = o.act('gdn_ba', 2 * g.HV); abOff = 0;
    await normedProjections(o, x, h, norm, [{ w: w.qkvz!, y: p }, { w: w.ba!, y: ab }]);
    await shortConv(o, p, w.conv, cs, qkv, 'silu');
  }
  await deltaRule(o, {
    q: qkv, k: qkv, v: qkv, a: ab, gp: w.gp, b: ab, state: o.state(`${l}.S`), out: yn, d: g,
    off: { k: KD, v: 2 * KD, a: abOff, b: abOff + g.HV }, norm: { w: w.norm, gate: p, gateOff: 2 * KD + VD, eps: c.rms_norm_eps },
  });
  await matmul(o, yn, w.out, null, 'none', x, true);
}

// ---- Gated attention (§8.5) ----

function loadGatedAttn(c: Qwen3NextConfig, r: WeightReader, o: Backend, a: string, table: Weight): GatedAttnWeights {
  const d = c.hidden_size, { H, KV, D } = c.attn, bias = c.attention_bias;
  const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
  // q_proj rows: per head h, D rows of the query then D rows of the gate
  const qRows = Array.from({ length: H }, (_, hh) => range(2 * hh * D, D)).flat(), gRows = qRows.map(i => i + D);
  const qw = r.readQ(`${a}q_proj.weight`, [2 * H * D, d]);
  const qbw = bias ? r.read(`${a}q_proj.bias`, [2 * H * D]) : null;
  const hv = (n: string, s: number[]) => { const w = r.read(n, s); return { w: o.weight(n, w, false), f: hostF32(w) }; };
  const qn = hv(`${a}q_norm.weight`, [D]), kn = hv(`${a}k_norm.weight`, [D]);
  const kb = bias ? hv(`${a}k_proj.bias`, [KV * D]) : null, vb = bias ? hv(`${a}v_proj.bias`, [KV * D]) : null;
  const qbq = qbw ? pickRows(qbw, qRows, 1) : null;
  const aux = ropeKvAux(c.attn, qn.f, kn.f, qbq ? hostF32(qbq) : null, kb?.f ?? null, vb?.f ?? null)!;
  const qh = pickRows(qw, qRows, d), gh = pickRows(qw, gRows, d), kh = r.readQ(`${a}k_proj.weight`, [KV * D, d]), vh = r.readQ(`${a}v_proj.weight`, [KV * D, d]);
  const st = bias ? null : stackProj([qh, gh, kh, vh], d), qgkv = st?.dtype === 'fp8' ? st : null;
  const oh = r.readQ(`${a}o_proj.weight`, [d, H * D]);
  return {
    qgkv: qgkv ? o.weight(`${a}q|gate|k|v_proj`, qgkv, true) : null,
    q: qgkv ? null : o.weight(`${a}q_proj.q`, qh, true), gate: qgkv ? null : o.weight(`${a}q_proj.gate`, gh, true),
    qb: qbw ? o.weight(`${a}q_proj.bias.q`, pickRows(qbw, qRows, 1), false) : null,
    gb: qbw ? o.weight(`${a}q_proj.bias.gate`, pickRows(qbw, gRows, 1), false) : null,
    k: qgkv ? null : o.weight(`${a}k_proj.weight`, kh, true), v: qgkv ? null : o.weight(`${a}v_proj.weight`, vh, true),
    o: o.weight(`${a}o_proj.weight`, oh, true), oFp8: oh.dtype === 'fp8',
    kb: kb?.w ?? null, vb: vb?.w ?? null,
    ob: bias ? vec(`${a}o_proj.bias`, [d]) : null,
    qn: qn.w, kn: kn.w, rope: table,
    aux: o.weight(`${a}rope_kv_aux`, { shape: [aux.length], dtype: 'f32', f32: aux }, false),
  };
}

/**
 * x += o_proj(attention(h) ⊙ σ(gate(h))) for layer l, h = RMSNorm(x)·norm.w: fp8 without biases, q|gate|k|v stacked in
 * one GEMV with the norm in its prologue (matmul_fp8_seg); else inside the q|gate|k and v GEMVs (normedProjections:
 * matmul_multi); with projection biases, a separate rms_norm, q|k|v as one GEMV and the gate (rope_kv adds the q/k/v
 * biases). Then rope_kv (zero-centred q/k norms, RoPE, KV-cache append), sdpa, and o_proj of the gated attention
 * (fp8: the gate product inside o_proj's GEMV, matmul_fp8_gated; else mul, then the GEMV).
 */
async function gatedAttention(o: Backend, w: GatedAttnWeights, c: AttnConfig, l: number, x: Tensor, h: Tensor, norm: { w: Weight; eps: number }): Promise<void> {
  const { H, KV, D } = c;
  const q = o.act('att_q', H * D), gate = o.act('att_gate', H * D), k = o.act('att_k', KV * D), v = o.act('att_v', KV * D);
  const bias = !!(w.qb || w.kb || w.vb);
  if (w.qgkv) await matmulFp8Seg(o, x, { ...norm, h }, w.qgkv, [{ y: q, act: 'none' }, { y: gate, act: 'sigmoid' }, { y: k, act: 'none' }, { y: v, act: 'none' }]);
  else if (!bias && !w.gb) await normedProjections(o, x, h, norm, [{ w: w.q!, y: q }, { w: w.gate!, y: gate, act: 'sigmoid' }, { w: w.k!, y: k }, { w: w.v!, y: v }]);
  else {
    await rmsNorm(o, x, norm.w, h, { eps: norm.eps });
    await matmulMulti(o, h, null, [{ w: w.q!, y: q }, { w: w.k!, y: k }, { w: w.v!, y: v }]);
    await matmul(o, h, w.gate!, w.gb, 'sigmoid', gate);
  }
  const kc = o.state(`${l}.k`), vc = o.state(`${l}.v`), kv = kvCacheDtype();
  const ctx = kvCtx(kc, KV * D, kv);
  await ropeKv(o, { q, k, v, kc, vc, table: w.rope, aux: w.aux, H, KV, D, R: c.R, ctx, kv, norm: { eps: c.qkNormEps!, plusOne: true }, bias });
  const att = o.act('att', H * D);
  await sdpa(o, q, kc, vc, att, { H, KV, D, ctx, window: 0, kv });
  if (w.oFp8) return matmulFp8Gated(o, att, gate, w.o, w.ob, 'none', x, true);   // o_proj(att ⊙ gate), the product in its loads
  const gated = o.act('att_gated', H * D);
  await mul(o, att, gate, gated);
  await matmul(o, gated, w.o, w.ob, 'none', x, true);
}

// ---- Sparse MoE with a shared expert (§8.2 MoE keys, §8.6) ----

function loadMoe(c: Qwen3NextConfig, r: WeightReader, o: Backend, p: string): MoeWeights {
  const d = c.hidden_size, E = c.num_experts, I = c.moe_intermediate_size, Ish = c.shared_expert_intermediate_size;
  return {
    router: loadRouter(r, o, `${p}gate`, E, d, Ish > 0 ? `${p}shared_expert_gate.weight` : null),
    experts: loadExperts(r, o, `${p}experts`, E, I, d),
    shared: Ish > 0 ? loadSharedExpert(r, o, `${p}shared_expert`, Ish, d) : null,
  };
}
