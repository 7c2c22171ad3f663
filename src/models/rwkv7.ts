// RWKV7 (fla `rwkv7`, RWKV7ForCausalLM): spec-rwkv7-gla-abc.md §1. One packed step through the layers.
import { embed } from '../../kernels/embed/embed.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { layerNorm } from '../../kernels/norm/layer_norm.ts';
import { shiftStore, tokenShift } from '../../kernels/rwkv7/token_shift.ts';
import { wkv7 } from '../../kernels/rwkv7/wkv7.ts';
import type { Backend, Tensor, Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import type { WeightReader } from '../load/weights.ts';
import { defineArch } from './arch.ts';
import { loadHead, logits } from './blocks.ts';

export interface Rwkv7Config {
  hidden_size: number; num_hidden_layers: number; head_dim: number; vocab_size: number;
  intermediate_size: number; norm_eps: number; norm_bias: boolean; norm_first: boolean; fuse_norm: boolean;
  tie_word_embeddings: boolean;
  decay_low_rank_dim: number; gate_low_rank_dim: number; a_low_rank_dim: number; v_low_rank_dim: number;
}

interface Layer {
  attn_norm: [Weight, Weight | null]; ffn_norm: [Weight, Weight | null]; pre_norm?: [Weight, Weight | null];
  x_mix: Weight;           // [6, C]: x_r, x_w, x_k, x_v, x_a, x_g
  params: Weight;          // [5, C]: k_k, k_a, r_k, g_norm.weight, g_norm.bias
  r: Weight; k: Weight; v: Weight; o: Weight;
  w1: Weight; w2: Weight; w0: Weight; a1: Weight; a2: Weight; a0: Weight;
  g1: Weight; g2: Weight; v1?: Weight; v2?: Weight; v0?: Weight;
  ffn_x_k: Weight; key: Weight; value: Weight;
}
interface Weights { emb: Weight; layers: Layer[]; norm: [Weight, Weight | null]; head: Weight }

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
    const layers: Layer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}attn.`;
      const rw = c.decay_low_rank_dim, ra = c.a_low_rank_dim, rg = c.gate_low_rank_dim, rv = c.v_low_rank_dim;
      const x_mix = o.weight(`${a}x_*`, r.stack(['r', 'w', 'k', 'v', 'a', 'g'].map(n => `${a}x_${n}`), C), false);
      const params = o.weight(`${a}params`, r.stack([`${a}k_k`, `${a}k_a`, `${a}r_k`, `${a}g_norm.weight`, `${a}g_norm.bias`], C), false);
      layers.push({
        pre_norm: l === 0 && c.norm_first ? ln(`${p}pre_norm`) : undefined,
        attn_norm: ln(`${p}attn_norm`), ffn_norm: ln(`${p}ffn_norm`), x_mix, params,
        r: mat(`${a}r_proj.weight`, [C, C]), k: mat(`${a}k_proj.weight`, [C, C]), v: mat(`${a}v_proj.weight`, [C, C]), o: mat(`${a}o_proj.weight`, [C, C]),
        w1: mat(`${a}w_lora.lora.0.weight`, [rw, C]), w2: mat(`${a}w_lora.lora.2.weight`, [C, rw]), w0: vec(`${a}w_lora.lora.2.bias`, [C]),
        a1: mat(`${a}a_lora.lora.0.weight`, [ra, C]), a2: mat(`${a}a_lora.lora.2.weight`, [C, ra]), a0: vec(`${a}a_lora.lora.2.bias`, [C]),
        g1: mat(`${a}g_lora.lora.0.weight`, [rg, C]), g2: mat(`${a}g_lora.lora.2.weight`, [C, rg]),
        ...(l > 0 ? { v1: mat(`${a}v_lora.lora.0.weight`, [rv, C]), v2: mat(`${a}v_lora.lora.2.weight`, [C, rv]), v0: vec(`${a}v_lora.lora.2.bias`, [C]) } : {}),
        ffn_x_k: vec(`${p}ffn.x_k`, [1, C]), key: mat(`${p}ffn.key.weight`, [I, C]), value: mat(`${p}ffn.value.weight`, [C, I]),
      });
    }
    const emb = mat('model.embeddings.weight', [V, C]);
    return { emb, layers, norm: ln('model.norm'), head: loadHead(r, o, emb, c.tie_word_embeddings, V, C) };
  },

  async forward(o, w, c) {
    const C = c.hidden_size, D = c.head_dim, eps = c.norm_eps;
    const x = o.act('x', C), h = o.act('h', C), y = o.act('y', C);
    const mix = o.act('mix', C, { planes: 6 }), proj = o.act('proj', C, { planes: 6 });
    const vfirst = o.act('vfirst', C), vmix = o.act('vmix', C), ffk = o.act('ffk', c.intermediate_size);
    const P = (t: Tensor, i: number) => o.plane(t, i);
    const lora = (r: number) => o.act(`lora${r}`, r);
    const first = w.layers[0]!;
    if (first.pre_norm) {
      const e = o.act('emb', C);
      await embed(o, w.emb, e);
      await layerNorm(o, e, first.pre_norm[0], first.pre_norm[1], eps, x);
    } else await embed(o, w.emb, x);
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l]!;
      // time mix (§1.3)
      await layerNorm(o, x, L.attn_norm[0], L.attn_norm[1], eps, h);
      const sa = o.state(`${l}.shift_attn`);
      await tokenShift(o, h, sa, L.x_mix, mix);
      await shiftStore(o, h, sa);
      await matmul(o, P(mix, 0), L.r, null, 'none', P(proj, 0));
      const lw = lora(c.decay_low_rank_dim);
      await matmul(o, P(mix, 1), L.w1, null, 'tanh', lw);
      await matmul(o, lw, L.w2, L.w0, 'rwkv_decay', P(proj, 1));
      await matmul(o, P(mix, 2), L.k, null, 'none', P(proj, 2));
      await matmul(o, P(mix, 3), L.v, null, 'none', P(proj, 3));
      const la = lora(c.a_low_rank_dim);
      await matmul(o, P(mix, 4), L.a1, null, 'none', la);
      await matmul(o, la, L.a2, L.a0, 'sigmoid', P(proj, 4));
      const lg = lora(c.gate_low_rank_dim);
      await matmul(o, P(mix, 5), L.g1, null, 'sigmoid', lg);
      await matmul(o, lg, L.g2, null, 'none', P(proj, 5));
      if (L.v1) {
        const lv = lora(c.v_low_rank_dim);
        await matmul(o, P(mix, 3), L.v1, null, 'none', lv);
        await matmul(o, lv, L.v2!, L.v0!, 'sigmoid', vmix);
      }
      await wkv7(o, { proj, vfirst, vmix: L.v1 ? vmix : null, params: L.params, state: o.state(`${l}.wkv`), out: y, D, fuseNorm: c.fuse_norm, gnEps: D * eps });
      await matmul(o, y, L.o, null, 'none', x, true);
      // channel mix (§1.4)
      await layerNorm(o, x, L.ffn_norm[0], L.ffn_norm[1], eps, h);
      const sf = o.state(`${l}.shift_ffn`);
      const kx = P(mix, 0);
      await tokenShift(o, h, sf, L.ffn_x_k, kx);
      await shiftStore(o, h, sf);
      await matmul(o, kx, L.key, null, 'relu2', ffk);
      await matmul(o, ffk, L.value, null, 'none', x, true);
    }
    return logits(o, x, w.head, (xk, xn) => layerNorm(o, xk, w.norm[0], w.norm[1], eps, xn));
  },
});
