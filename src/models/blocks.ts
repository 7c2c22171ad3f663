// Blocks shared by several architectures: the output head and logits, softmax attention with a KV cache (GQA, q/k
// norm, RoPE, window) and the SwiGLU MLP (spec-deltanet-attention-qwen3next.md §1.3, §1.6, §1.7).
import { invFreq, ropeTable, type RopeScaling } from '../../kernels/attention/rope.ref.ts';
import { ropeKvAux } from '../../kernels/attention/rope_kv.ts';
import { embed, keptRows } from '../../kernels/embed/embed.ts';
import { kvCacheDtype, kvCols, kvCtx } from '../../kernels/attention/sdpa.ts';
import { siluMul } from '../../kernels/elementwise/silu_mul.ts';
import { attnOut } from '../../kernels/matmul/matmul_gemv_comb.ts';
import { matmulMulti } from '../../kernels/matmul/matmul_gemv_multi.ts';
import { qkvRope } from '../../kernels/matmul/matmul_gemv_rope.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Backend, HostWeight, StateSpec, Tensor, Weight } from '../backend/backend.ts';
import { num, str, unsupported } from '../load/config.ts';
import type { WeightReader } from '../load/weights.ts';
import { FormatError } from '../util/errors.ts';
import { knob } from '../util/knobs.ts';
import type { HeadArgmax } from './arch.ts';

/**
 * The output head [V, C], as transformers builds it: with tie_word_embeddings the embedding matrix `emb` (a stored
 * lm_head.weight, which transformers also saves for tied models, is ignored); without it lm_head.weight, which must
 * then be in the checkpoint — a missing one is an error, never a silent tie.
 */
export function loadHead(r: WeightReader, o: Backend, emb: Weight, tie: boolean, V: number, C: number): Weight {
  if (tie) {
    r.ignore(n => n === 'lm_head.weight');
    return emb;
  }
  if (!r.has('lm_head.weight'))
    throw new FormatError(`${r.where}: missing tensor lm_head.weight (config.json has tie_word_embeddings: false; set it to true if the head is the embedding matrix)`);
  return o.weight('lm_head.weight', r.read('lm_head.weight', [V, C]), true);
}

/**
 * Logits of the kept rows [K, V] = head(norm(x[kept])); `norm(xk, xn)` writes the final norm of xk into xn, or
 * `norm` is a plain RMSNorm's weight and eps, which then runs in the head GEMV's prologue (matmul_multi). The kept
 * rows are x itself where the step keeps every row (decode: no gather_rows, keptRows). `pick` (a greedy step): the
 * head GEMV also does argmax's first pass in its epilogue and argmax's final pass follows (FLA_HEAD_ARGMAX=0: the
 * engine's own argmax, as before).
 */
export async function logits(o: Backend, x: Tensor, head: Weight, norm: ((xk: Tensor, xn: Tensor) => Promise<void>) | { w: Weight; eps: number },
  pick?: HeadArgmax): Promise<Tensor> {
  const C = x.cols, V = head.shape[0]!;
  const xk = await keptRows(o, x, () => o.act('xk', C, { rows: 'k' })), xn = o.act('xn', C, { rows: 'k' });
  const out = o.act('logits', V, { rows: 'k' });
  const am = pick && knob('FLA_HEAD_ARGMAX') !== '0' ? { out: pick.out, ids: pick.ids } : null;
  if (typeof norm === 'function') {
    await norm(xk, xn);
    if (am) await matmulMulti(o, xn, null, [{ w: head, y: out }], 'none', false, null, am);
    else await matmul(o, xn, head, null, 'none', out);
  } else await matmulMulti(o, xk, { w: norm.w, eps: norm.eps, h: xn }, [{ w: head, y: out }], 'none', false, null, am);
  if (pick && am) pick.done = true;
  return out;
}

/**
 * The final norm of a model whose head follows a plain RMSNorm (a zero-centred one: its weight as 1 + w): in the head
 * GEMV's prologue (logits()'s `{ w, eps }`), or, with FLA_HEAD_NORM=0, its own rms_norm dispatch as before.
 */
export function headRmsNorm(o: Backend, w: Weight, eps: number): ((xk: Tensor, xn: Tensor) => Promise<void>) | { w: Weight; eps: number } {
  return knob('FLA_HEAD_NORM') === '0' ? (xk, xn) => rmsNorm(o, xk, w, xn, { eps }) : { w, eps };
}

export interface AttnConfig {
  H: number; KV: number; D: number; R: number;          // heads, kv heads, head dim, rotary dims
  theta: number; scaling: RopeScaling; maxPos: number;
  qkNormEps: number | null; zeroCentred: boolean; window: number;
}

export interface AttnWeights {
  q: Weight; k: Weight; v: Weight; o: Weight;
  qb: Weight | null; kb: Weight | null; vb: Weight | null; ob: Weight | null;
  qn: Weight | null; kn: Weight | null;
  rope: Weight;                                           // [2, P, R/2] cos/sin table
  aux: Weight | null;                                     // rope_kv's q/k norm weights and q/k/v biases (ropeKvAux)
}

/**
 * A vector's f32 values from a host weight (read() gives 16-bit checkpoint vectors as their bits); a synthetic one
 * (fla bench --synthetic: made on the device) gets a constant, which times the same as any values.
 */
export function hostF32(w: HostWeight): Float32Array {
  if (w.f32) return w.f32;
  if (w.synthetic) return new Float32Array(w.shape.reduce((a, b) => a * b, 1)).fill(w.synthetic.scale);   // fla bench: any values
  const b = w.bits16!;
  if (w.dtype === 'f16') return Float32Array.from(new Float16Array(b.buffer, b.byteOffset, b.length));
  const u = new Uint32Array(b.length);
  for (let i = 0; i < b.length; i++) u[i] = b[i]! << 16;
  return new Float32Array(u.buffer);
}

/** RoPE settings from an HF config: rope_parameters (transformers 5) or legacy rope_theta / rope_scaling. */
export function ropeConfig(j: Record<string, unknown>, where: string, defTheta = 10000): { theta: number; scaling: RopeScaling } {
  const rp = (j.rope_parameters ?? j.rope_scaling ?? {}) as Record<string, unknown>;
  const theta = num({ ...j, ...rp }, 'rope_theta', where, defTheta);
  const type = str(rp, 'rope_type', where, (rp.type as string) ?? 'default');
  if (type === 'default') return { theta, scaling: { type: 'default' } };
  if (type === 'llama3') return {
    theta, scaling: { type: 'llama3', factor: num(rp, 'factor', where, 8), lowFreqFactor: num(rp, 'low_freq_factor', where, 1),
      highFreqFactor: num(rp, 'high_freq_factor', where, 4), originalMax: num(rp, 'original_max_position_embeddings', where, 8192) },
  };
  return unsupported(where, 'rope_type', type, '"default", "llama3"');
}

export function attnState(c: AttnConfig, l: number, ctx: number): StateSpec[] {
  const cols = kvCols(ctx, c.KV * c.D, kvCacheDtype()), tokenCols = kvCols(1, c.KV * c.D, kvCacheDtype());   // FLA_KV_CACHE: f32, or 16-bit pairs in u32 words
  return [{ key: `${l}.k`, cols, tokenCols }, { key: `${l}.v`, cols, tokenCols }];
}

export const MAX_ROPE_TABLE = 65536;

/** Read one attention layer's weights; `names` maps q,k,v,o,q_norm,k_norm to checkpoint prefixes (no .weight). */
export function loadAttention(c: AttnConfig, r: WeightReader, o: Backend, C: number, names: Record<'q' | 'k' | 'v' | 'o' | 'qn' | 'kn', string>,
  bias: { qkv: boolean; o: boolean }, table: Weight): AttnWeights {
  const mat = (n: string, s: number[]) => o.weight(n, r.readQ(n, s), true);
  const host: Record<string, Float32Array> = {};
  const vec = (n: string, s: number[]) => { const hw = r.read(n, s); host[n] = hostF32(hw); return o.weight(n, hw, false); };
  const { H, KV, D } = c;
  const w: AttnWeights = {
    q: mat(`${names.q}.weight`, [H * D, C]), k: mat(`${names.k}.weight`, [KV * D, C]), v: mat(`${names.v}.weight`, [KV * D, C]), o: mat(`${names.o}.weight`, [C, H * D]),
    qb: bias.qkv ? vec(`${names.q}.bias`, [H * D]) : null, kb: bias.qkv ? vec(`${names.k}.bias`, [KV * D]) : null,
    vb: bias.qkv ? vec(`${names.v}.bias`, [KV * D]) : null, ob: bias.o ? vec(`${names.o}.bias`, [C]) : null,
    qn: c.qkNormEps !== null ? vec(`${names.qn}.weight`, [D]) : null, kn: c.qkNormEps !== null ? vec(`${names.kn}.weight`, [D]) : null,
    rope: table, aux: null,
  };
  const h = (n: string) => host[n] ?? null;
  const aux = ropeKvAux(c, h(`${names.qn}.weight`), h(`${names.kn}.weight`), h(`${names.q}.bias`), h(`${names.k}.bias`), h(`${names.v}.bias`));
  if (aux) w.aux = o.weight(`${names.q}.rope_kv_aux`, { shape: [aux.length], dtype: 'f32', f32: aux }, false);
  return w;
}

export function ropeWeight(c: AttnConfig, o: Backend): Weight {
  const P = Math.min(c.maxPos, MAX_ROPE_TABLE);
  return o.weight('rope', { shape: [2, P, c.R / 2], dtype: 'f32', f32: ropeTable(invFreq(c.theta, c.R, c.scaling), P) }, false);
}

/**
 * x += o_proj(attention(h)) for layer l; h is the normed input [N, C]. With `norm`, h = RMSNorm(x)·norm.w is
 * computed here, inside the q|k|v projection where the step allows (matmul_multi; h is then scratch). The q/k/v
 * biases, q/k norms, RoPE and the KV-cache append run as one rope_kv dispatch, or, without q/k norm and biases, in
 * the q|k|v GEMV's epilogue (qkv_rope): decode is then q|k|v(+rope_kv), sdpa and o-proj (with the residual add), both through attn_out (whose fused variant, forced only for now, runs the
 * split-K attention's combine pass in o-proj's prologue). `embed` (the first layer): x's rows are the tokens' rows of
 * this table, not yet written — the q|k|v GEMV reads them from the table and o-proj adds them as the residual
 * (qkv_rope's and attn_out's `embed`), so the step has no embed dispatch at decode.
 */
export async function attention(o: Backend, w: AttnWeights, c: AttnConfig, l: number, h: Tensor, x: Tensor, norm?: { w: Weight; eps: number },
  embed: Weight | null = null): Promise<void> {
  if (embed && !norm) throw new Error('attention: an embedding lookup inside the layer needs its norm inside the projection (x is not written before)');
  const q = o.act('q', c.H * c.D), k = o.act('k', c.KV * c.D), v = o.act('v', c.KV * c.D);
  const parts = [{ w: w.q, y: q }, { w: w.k, y: k }, { w: w.v, y: v }];
  const kc = o.state(`${l}.k`), vc = o.state(`${l}.v`), kv = kvCacheDtype();
  const ctx = kvCtx(kc, c.KV * c.D, kv);
  // the biases are added by rope_kv; without q/k norm and biases RoPE and the cache append run in the GEMV's epilogue
  await qkvRope(o, {
    mm: { x: norm ? x : h, norm: norm ? { w: norm.w, eps: norm.eps, h } : null, parts, act: 'none', accumulate: false },
    rope: { q, k, v, kc, vc, table: w.rope, aux: w.aux, H: c.H, KV: c.KV, D: c.D, R: c.R, ctx, kv,
      norm: w.qn && w.kn ? { eps: c.qkNormEps!, plusOne: c.zeroCentred } : null, bias: !!(w.qb || w.kb || w.vb) },
    embed,
  });
  const att = o.act('att', c.H * c.D);
  await attnOut(o, q, kc, vc, att, { H: c.H, KV: c.KV, D: c.D, ctx, window: c.window, kv }, w.o, w.ob, x, true, embed);   // o_proj + residual (split-K's combine folded in)
}

export interface MlpWeights { gate: Weight; up: Weight; down: Weight; gb: Weight | null; ub: Weight | null; db: Weight | null }

export function loadMlp(r: WeightReader, o: Backend, prefix: string, C: number, I: number, bias = false): MlpWeights {
  const mat = (n: string, s: number[]) => o.weight(n, r.readQ(n, s), true);
  const vec = (n: string, s: number[]) => (bias ? o.weight(n, r.read(n, s), false) : null);
  return {
    gate: mat(`${prefix}.gate_proj.weight`, [I, C]), up: mat(`${prefix}.up_proj.weight`, [I, C]), down: mat(`${prefix}.down_proj.weight`, [C, I]),
    gb: vec(`${prefix}.gate_proj.bias`, [I]), ub: vec(`${prefix}.up_proj.bias`, [I]), db: vec(`${prefix}.down_proj.bias`, [C]),
  };
}

/**
 * x += down(silu(gate(h)) ⊙ up(h)). With `norm`, h = RMSNorm(x)·norm.w is computed here, as in attention(). Without
 * biases, gate|up is one GEMV with the norm in its prologue and the SwiGLU product in its epilogue (matmul_multi),
 * and the down projection adds the residual: two dispatches.
 */
export async function mlp(o: Backend, w: MlpWeights, h: Tensor, x: Tensor, norm?: { w: Weight; eps: number }): Promise<void> {
  const I = w.gate.shape[0]!;
  const g = o.act('mlp_g', I), u = o.act('mlp_u', I), gu = o.act('mlp_gu', I);
  if (!w.gb && !w.ub) await matmulMulti(o, norm ? x : h, norm ? { w: norm.w, eps: norm.eps, h } : null, [{ w: w.gate, y: g }, { w: w.up, y: u }], 'none', false, { out: gu });
  else {
    if (norm) await rmsNorm(o, x, norm.w, h, { eps: norm.eps });
    await matmul(o, h, w.gate, w.gb, 'none', g);
    await matmul(o, h, w.up, w.ub, 'none', u);
    await siluMul(o, g, u, gu);
  }
  await matmul(o, gu, w.down, w.db, 'none', x, true);
}

/** The pre-norm decoder shared by Llama-style models: x += attn(norm1(x)); x += mlp(norm2(x)). */
export interface DecoderLayer { norm1: Weight; norm2: Weight; attn: AttnWeights; mlp: MlpWeights }
export interface DecoderWeights { emb: Weight; layers: DecoderLayer[]; norm: Weight; head: Weight }

/**
 * Embed → layers → final RMSNorm of the kept rows → head; returns the logits [K, V]. The embedding lookup runs inside
 * the first layer's attention (its q|k|v GEMV reads the table, o-proj adds the rows as the residual; FLA_EMBED_FOLD=0:
 * an embed dispatch first, as before).
 */
export async function decoderForward(o: Backend, w: DecoderWeights, c: { hidden: number; eps: number; attn: AttnConfig }, pick?: HeadArgmax): Promise<Tensor> {
  const x = o.act('x', c.hidden), h = o.act('h', c.hidden);
  const fold = knob('FLA_EMBED_FOLD') !== '0' && w.layers.length > 0;
  if (!fold) await embed(o, w.emb, x);
  for (let l = 0; l < w.layers.length; l++) {
    const L = w.layers[l]!;
    await attention(o, L.attn, c.attn, l, h, x, { w: L.norm1, eps: c.eps }, l === 0 && fold ? w.emb : null);   // the norms run inside the projections
    await mlp(o, L.mlp, h, x, { w: L.norm2, eps: c.eps });
  }
  return logits(o, x, w.head, { w: w.norm, eps: c.eps }, pick);   // the final norm runs inside the head GEMV
}
