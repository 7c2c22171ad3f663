// RWKV7 (fla `rwkv7`, RWKV7ForCausalLM): spec-rwkv7-gla-abc.md §1. One packed step through the layers.
import { embed } from '../../kernels/embed/embed.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { layerNorm } from '../../kernels/norm/layer_norm.ts';
import { rwkv7Tmix } from '../../kernels/rwkv7/rwkv7_tmix.ts';
import { rwkv7Cmix, type Rwkv7CmixArgs } from '../../kernels/rwkv7/rwkv7_cmix.ts';
import type { LoraRanks } from '../../kernels/rwkv7/wkv7_lora.ref.ts';
import type { LoraMats } from '../../kernels/rwkv7/rwkv7_tmix.ts';
import type { Backend, HostWeight, Tensor, Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import type { WeightReader } from '../load/weights.ts';
import { defineArch } from './arch.ts';
import { knob } from '../util/knobs.ts';
import { loadHead, logits } from './blocks.ts';

export interface Rwkv7Config {
  hidden_size: number; num_hidden_layers: number; head_dim: number; vocab_size: number;
  intermediate_size: number; norm_eps: number; norm_bias: boolean; norm_first: boolean; fuse_norm: boolean;
  tie_word_embeddings: boolean;
  decay_low_rank_dim: number; gate_low_rank_dim: number; a_low_rank_dim: number; v_low_rank_dim: number;
}

/**
 * One layer as the fused decode path reads it (repacked at load). attn_nw / ffn_nw [2, C]: LayerNorm weight and bias
 * (zeros where norm_bias is false); layer 0 with norm_first: attn_nw [4, C] with the pre-norm's weight and bias after.
 * wl [R, C]: the LoRA down-projections W1, A1, G1, V1 stacked; wu [R, C]: their up-projections transposed and stacked
 * (W2ᵀ, A2ᵀ, G2ᵀ, V2ᵀ), row i pairing with column i of the down-projections (layer 0 has no V1/V2: R without rv).
 */
interface Layer {
  attn_nw: Weight; ffn_nw: Weight;
  ffn_lnw: Weight;         // [3, C]: ffn_nw then ffn.x_k (rwkv7_cmix's decode path reads both as one)
  x_mix: Weight;           // [6, C]: x_r, x_w, x_k, x_v, x_a, x_g
  attn_lnw: Weight;        // [attn_nw rows + 6, C]: attn_nw then x_mix (rwkv7_tmix's decode path reads both as one)
  params: Weight;          // [8, C]: k_k, k_a, r_k, g_norm.weight, g_norm.bias, w0, a0, v0 (zeros in layer 0)
  r: Weight; k: Weight; v: Weight; o: Weight;
  wl: Weight; wu: Weight; ranks: LoraRanks;
  /** the LoRA matrices as the checkpoint has them, for rwkv7_tmix 'mm' (loaded only when FLA_KERNEL_RWKV7_TMIX=mm) */
  lm: Pick<LoraMats, 'down' | 'up' | 'bias'> | null;
  ffn_x_k: Weight; key: Weight; value: Weight;
}
interface Weights { emb: Weight; layers: Layer[]; norm: [Weight, Weight | null]; head: Weight; pre: boolean }

/** f32 values of a host weight (vectors, or a matrix whose parts differ in dtype). */
function hostF32(w: HostWeight): Float32Array {
  if (w.f32) return w.f32;
  const b = w.bits16!;
  if (w.dtype === 'f16') return Float32Array.from(new Float16Array(b.buffer, b.byteOffset, b.length));
  const u = new Uint32Array(b.length);
  for (let i = 0; i < b.length; i++) u[i] = b[i]! << 16;
  return new Float32Array(u.buffer);
}

/** Host matrices [r_i, cols] stacked by rows into one [Σ r_i, cols] (bf16/f16 bits kept when all share the dtype). */
function stackRows(ws: HostWeight[], cols: number): HostWeight {
  const rows = ws.reduce((s, w) => s + w.shape[0]!, 0), shape = [rows, cols];
  if (ws.some(w => w.synthetic)) return { shape, dtype: 'bf16', synthetic: { seed: ws[0]!.synthetic!.seed * 7919 + rows, scale: ws[0]!.synthetic!.scale } };   // fla bench
  const d = ws[0]!.dtype;
  if (ws.every(w => w.bits16 && w.dtype === d)) {
    const out = new Uint16Array(rows * cols);
    let o = 0;
    for (const w of ws) { out.set(w.bits16!, o); o += w.bits16!.length; }
    return { shape, dtype: d, bits16: out };
  }
  const out = new Float32Array(rows * cols);
  let o = 0;
  for (const w of ws) { const f = hostF32(w); out.set(f, o); o += f.length; }
  return { shape, dtype: 'f32', f32: out };
}

/** A host matrix [R, C] transposed to [C, R], in its own dtype. */
function transpose(w: HostWeight): HostWeight {
  const [R, C] = w.shape as [number, number];
  const shape = [C, R];
  if (w.synthetic) return { ...w, shape };
  const src = w.bits16 ?? w.f32!;
  const out = w.bits16 ? new Uint16Array(R * C) : new Float32Array(R * C);
  for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) out[j * R + i] = src[i * C + j]!;
  return w.bits16 ? { shape, dtype: w.dtype, bits16: out as Uint16Array } : { shape, dtype: w.dtype, f32: out as Float32Array };
}

// Python round() (half to even), used by fla for null low-rank dims (spec §1.1).
const pyRound = (x: number) => { const f = Math.floor(x), d = x - f; return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f; };

export default defineArch<Rwkv7Config, Weights>({
  modelTypes: ['rwkv7'],

  parseConfig(j, where) {
    const C = int(j, 'hidden_size', where, 2048);
    const L = int(j, 'num_hidden_layers', where, 24);
    let head_dim = optInt(j, 'head_dim', where);
    if (head_dim === null) head_dim = C / int(j, 'num_heads', where);
    if (!Number.isInteger(head_dim) || C % head_dim !== 0) unsupported(where, 'head_dim', head_dim, 'a divisor of hidden_size');
    if (j.attn) unsupported(where, 'attn', j.attn, 'null (hybrid attention layers are not implemented)');
    const act = str(j, 'hidden_act', where, 'sqrelu');
    if (act !== 'sqrelu') unsupported(where, 'hidden_act', act, '"sqrelu"');
    const vd = j.value_dim;
    if (vd !== undefined && vd !== null && !(Array.isArray(vd) ? vd.every(x => x === C) : vd === C))
      unsupported(where, 'value_dim', vd, `null or ${C} (value width equal to hidden_size)`);
    const f = head_dim / 64, sq = Math.sqrt(C);
    const lr = (key: string, def: number) => optInt(j, key, where) ?? def;
    const I = optInt(j, 'intermediate_size', where) ?? 32 * Math.ceil(Math.trunc(C * num(j, 'hidden_ratio', where, 4)) / 32);
    return {
      hidden_size: C, num_hidden_layers: L, head_dim, vocab_size: int(j, 'vocab_size', where, 32000),
      intermediate_size: I, norm_eps: num(j, 'norm_eps', where, 1e-5), norm_bias: bool(j, 'norm_bias', where, true),
      norm_first: bool(j, 'norm_first', where, true), fuse_norm: bool(j, 'fuse_norm', where, true),
      tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false),
      decay_low_rank_dim: lr('decay_low_rank_dim', Math.max(32, pyRound(2.5 * sq * f / 32) * 32)),
      a_low_rank_dim: lr('a_low_rank_dim', Math.max(32, pyRound(2.5 * sq * f / 32) * 32)),
      gate_low_rank_dim: lr('gate_low_rank_dim', Math.max(32, pyRound(5 * sq / 32) * 32)),
      v_low_rank_dim: lr('v_low_rank_dim', Math.max(32, pyRound(1.7 * sq * f / 32) * 32)),
    };
  },

  dims: c => ({ hidden: c.hidden_size, vocab: c.vocab_size, maxContext: null }),

  state(c) {
    const C = c.hidden_size, D = c.head_dim;
    return Array.from({ length: c.num_hidden_layers }, (_, l) => [
      { key: `${l}.shift_attn`, cols: C }, { key: `${l}.shift_ffn`, cols: C }, { key: `${l}.wkv`, cols: C * D },
    ]).flat();
  },

  load(c, r: WeightReader, o: Backend): Weights {
    const C = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
    const mat = (n: string, s: number[]) => o.weight(n, r.read(n, s), true);
    const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
    const ln = (p: string): [Weight, Weight | null] => [vec(`${p}.weight`, [C]), c.norm_bias ? vec(`${p}.bias`, [C]) : null];
    // LayerNorm weight and bias rows (a zero bias where there is none), for ln_shift
    const lnRows = (p: string): Float32Array => {
      const out = new Float32Array(2 * C);
      out.set(r.f32(`${p}.weight`, [C]), 0);
      if (c.norm_bias) out.set(r.f32(`${p}.bias`, [C]), C);
      return out;
    };
    const layers: Layer[] = [];
    const wantMm = knob('FLA_KERNEL_RWKV7_TMIX') === 'mm';   // the LoRA matrices twice in memory only when asked for
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}attn.`;
      const ranks: LoraRanks = { w: c.decay_low_rank_dim, a: c.a_low_rank_dim, g: c.gate_low_rank_dim, v: l > 0 ? c.v_low_rank_dim : 0 };
      const xmixHost = r.stack(['r', 'w', 'k', 'v', 'a', 'g'].map(n => `${a}x_${n}`), C);
      const x_mix = o.weight(`${a}x_*`, xmixHost, false);
      const pnames = [`${a}k_k`, `${a}k_a`, `${a}r_k`, `${a}g_norm.weight`, `${a}g_norm.bias`, `${a}w_lora.lora.2.bias`, `${a}a_lora.lora.2.bias`];
      if (l > 0) pnames.push(`${a}v_lora.lora.2.bias`);
      const pv = new Float32Array(8 * C);
      pv.set(r.stack(pnames, C).f32!);
      const params = o.weight(`${a}params`, { shape: [8, C], dtype: 'f32', f32: pv }, false);
      const pre = l === 0 && c.norm_first;
      const attnRows = lnRows(`${p}attn_norm`);
      const attnNw = pre ? (() => { const f = new Float32Array(4 * C); f.set(attnRows); f.set(lnRows(`${p}pre_norm`), 2 * C); return f; })() : attnRows;
      const lo = (n: string, rk: number) => r.read(`${a}${n}_lora.lora.0.weight`, [rk, C]);
      const hi = (n: string, rk: number) => transpose(r.read(`${a}${n}_lora.lora.2.weight`, [C, rk]));
      const ls: [string, number][] = [['w', ranks.w], ['a', ranks.a], ['g', ranks.g], ...(l > 0 ? [['v', ranks.v] as [string, number]] : [])];
      const nr = pre ? 4 : 2, lnw = new Float32Array((nr + 6) * C);
      lnw.set(attnNw);
      lnw.set(xmixHost.f32!, nr * C);
      layers.push({
        attn_nw: o.weight(`${p}attn_norm*`, { shape: [nr, C], dtype: 'f32', f32: attnNw }, false),
        attn_lnw: o.weight(`${p}attn_norm* + ${a}x_*`, { shape: [nr + 6, C], dtype: 'f32', f32: lnw }, false),
        ffn_nw: o.weight(`${p}ffn_norm*`, { shape: [2, C], dtype: 'f32', f32: lnRows(`${p}ffn_norm`) }, false),
        ffn_lnw: o.weight(`${p}ffn_norm* + ${p}ffn.x_k`, { shape: [3, C], dtype: 'f32', f32: (() => { const f = new Float32Array(3 * C); f.set(lnRows(`${p}ffn_norm`)); f.set(r.f32(`${p}ffn.x_k`, [1, C]), 2 * C); return f; })() }, false),
        x_mix, params,
        r: mat(`${a}r_proj.weight`, [C, C]), k: mat(`${a}k_proj.weight`, [C, C]), v: mat(`${a}v_proj.weight`, [C, C]), o: mat(`${a}o_proj.weight`, [C, C]),
        wl: o.weight(`${a}*_lora.lora.0.weight`, stackRows(ls.map(([n, rk]) => lo(n, rk)), C), true),
        wu: o.weight(`${a}*_lora.lora.2.weight (transposed)`, stackRows(ls.map(([n, rk]) => hi(n, rk)), C), true),
        ranks,
        lm: wantMm ? {
          down: ls.map(([n, rk]) => o.weight(`${a}${n}_lora.lora.0.weight`, lo(n, rk), true)),
          up: ls.map(([n, rk]) => mat(`${a}${n}_lora.lora.2.weight`, [C, rk])),
          bias: ls.filter(([n]) => n !== 'g').map(([n]) => vec(`${a}${n}_lora.lora.2.bias`, [C])),
        } : null,
        ffn_x_k: vec(`${p}ffn.x_k`, [1, C]), key: mat(`${p}ffn.key.weight`, [I, C]), value: mat(`${p}ffn.value.weight`, [C, I]),
      });
    }
    const emb = mat('model.embeddings.weight', [V, C]);
    return { emb, layers, norm: ln('model.norm'), head: loadHead(r, o, emb, c.tie_word_embeddings, V, C), pre: c.norm_first };
  },

  async forward(o, w, c, pick) {
    const C = c.hidden_size, D = c.head_dim, eps = c.norm_eps;
    const x = o.act('x', C), y = o.act('y', C);
    const mix = o.act('mix', C, { planes: 6 }), proj = o.act('proj', C, { planes: 6 });
    const vfirst = o.act('vfirst', C), ffk = o.act('ffk', c.intermediate_size), vmix = o.act('vmix', C);
    const planes = (t: Tensor) => Array.from({ length: 6 }, (_, i) => o.plane(t, i));
    const mixPlanes = planes(mix), projPlanes = planes(proj);
    const e = w.pre ? o.act('emb', C) : x;
    await embed(o, w.emb, e);
    let prevCmix: Rwkv7CmixArgs | null = null;
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l]!;
      // time mix (§1.3): [pre-norm →] LayerNorm → token shift (state stored); seven projections; the recurrence with
      // its LoRA up-projections and gates (one op: rwkv7_tmix); o_proj into the residual
      const pre = l === 0 && w.pre;
      const R = L.ranks.w + L.ranks.a + L.ranks.g + L.ranks.v;
      const lora = o.act(`lora${R}`, R);
      const rk = [L.ranks.w, L.ranks.a, L.ranks.g, ...(L.ranks.v ? [L.ranks.v] : [])];
      const mm = L.lm && { ...L.lm, rows: rk.map((r, i) => o.act(`lora_${'wagv'[i]}${r}`, r)), vmix: L.ranks.v ? vmix : null };
      await rwkv7Tmix(o, {
        ln: { x: pre ? e : x, nw: L.attn_nw, state: o.state(`${l}.shift_attn`), mix: L.x_mix, out: mix, xo: pre ? x : null, eps }, lnw: L.attn_lnw,
        proj: { mix, mixPlanes, wr: L.r, wk: L.k, wv: L.v, wl: L.wl, ranks: L.ranks, proj, projPlanes, lora },
        core: { proj, lora, wu: L.wu, ranks: L.ranks, params: L.params, vfirst, state: o.state(`${l}.wkv`), out: y, D, fuseNorm: c.fuse_norm, gnEps: D * eps },
        mm, prevCmix,
      });
      await matmul(o, y, L.o, null, 'none', x, true);
      // channel mix (§1.4): LayerNorm → token shift → key with relu² (one op: rwkv7_cmix; past the last layer, h goes
      // to proj plane 5 for the next layer's time mix, which may store this layer's shift state from it)
      const kx = mixPlanes[0]!;
      const cm: Rwkv7CmixArgs = {
        ln: { x, nw: L.ffn_nw, state: o.state(`${l}.shift_ffn`), mix: L.ffn_x_k, out: kx, xo: null, eps }, lnw: L.ffn_lnw, key: L.key, ffk,
        hout: l + 1 < w.layers.length ? projPlanes[5]! : null,
      };
      await rwkv7Cmix(o, cm);
      prevCmix = cm.hout ? cm : null;
      await matmul(o, ffk, L.value, null, 'none', x, true);
    }
    return logits(o, x, w.head, (xk, xn) => layerNorm(o, xk, w.norm[0], w.norm[1], eps, xn), pick);
  },
});
