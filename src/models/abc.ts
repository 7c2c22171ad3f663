// ABC (fla `abc`, ABCForCausalLM): spec-rwkv7-gla-abc.md §3. Rotary q/k, clamped slot logits, the two-stage
// slot-memory recurrence with a softmax over slots, gated RMSNorm output; SwiGLU MLP. We follow fla's full-forward
// semantics (§3.4): the log-normaliser z is part of the cached state, so cached decode equals uncached logits.
import { abc } from '../../kernels/abc/abc.ts';
import { abcStateCols } from '../../kernels/abc/abc.ref.ts';
import { invFreq, ropeTable } from '../../kernels/attention/rope.ref.ts';
import { rope } from '../../kernels/attention/rope.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, unsupported } from '../load/config.ts';
import { defineArch } from './arch.ts';
import { checkSkeleton, embedTokens, expandDim, loadFrame, loadMlp, logitsOf, mlpBlock, mlpWidth, type Frame, type Mlp } from './linear_common.ts';

export interface AbcConfig {
  hidden_size: number; num_hidden_layers: number; num_heads: number; key_dim: number; value_dim: number;
  head_k_dim: number; head_v_dim: number; num_slots: number; use_rope: boolean; clamp_min: number | null; clamp_max: number | null;
  norm_eps: number; elementwise_affine: boolean; intermediate_size: number; vocab_size: number; tie_word_embeddings: boolean;
}

/** Rotary positions covered by the host cos/sin table (the engine bounds ABC contexts to it). */
export const ABC_MAX_POSITIONS = 65536;
const ROPE_BASE = 10000;

interface Layer { attn_norm: Weight; q: Weight; k: Weight; v: Weight; g: Weight; s: Weight; o: Weight; g_norm: Weight | null; mlp: Mlp }
interface Weights { frame: Frame; layers: Layer[]; rope: Weight | null }

const optNum = (j: Record<string, unknown>, key: string, where: string, def: number): number | null =>
  j[key] === null ? null : num(j, key, where, def);

export default defineArch<AbcConfig, Weights>({
  modelTypes: ['abc'],

  parseConfig(j, where) {
    checkSkeleton(j, where);
    const C = int(j, 'hidden_size', where, 2048);
    const H = int(j, 'num_heads', where, 4);
    const K = expandDim(j, 'expand_k', 0.5, C, H, where), V = expandDim(j, 'expand_v', 1, C, H, where);
    if (bool(j, 'use_short_conv', where, false)) unsupported(where, 'use_short_conv', true, 'false');
    if (K.head % 2 !== 0) unsupported(where, 'expand_k', j.expand_k, 'an even key head dim (rotary)');
    return {
      hidden_size: C, num_hidden_layers: int(j, 'num_hidden_layers', where, 24), num_heads: H,
      key_dim: K.total, value_dim: V.total, head_k_dim: K.head, head_v_dim: V.head,
      num_slots: optInt(j, 'num_slots', where) ?? K.head, use_rope: bool(j, 'use_rope', where, true),
      clamp_min: optNum(j, 'clamp_min', where, -32), clamp_max: optNum(j, 'clamp_max', where, 32),
      norm_eps: num(j, 'norm_eps', where, 1e-6), elementwise_affine: bool(j, 'elementwise_affine', where, true),
      intermediate_size: mlpWidth(j, where, C), vocab_size: int(j, 'vocab_size', where, 32000),
      tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false),
    };
  },

  dims: c => ({
    hidden: c.hidden_size, vocab: c.vocab_size, maxContext: c.use_rope ? ABC_MAX_POSITIONS : null,
  }),

  state(c) {
    const cols = abcStateCols({ H: c.num_heads, DK: c.head_k_dim, DV: c.head_v_dim, M: c.num_slots });
    return Array.from({ length: c.num_hidden_layers }, (_, l) => ({ key: `${l}.S`, cols }));
  },

  load(c, r, o) {
    const C = c.hidden_size, Kd = c.key_dim, Vd = c.value_dim;
    const mat = (n: string, s: number[]) => o.weight(n, r.read(n, s), true);
    const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
    const layers: Layer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}attn.`;
      layers.push({
        attn_norm: vec(`${p}attn_norm.weight`, [C]),
        q: mat(`${a}q_proj.weight`, [Kd, C]), k: mat(`${a}k_proj.weight`, [Kd, C]), v: mat(`${a}v_proj.weight`, [Vd, C]),
        g: mat(`${a}g_proj.weight`, [Vd, C]), s: mat(`${a}s_proj.weight`, [c.num_heads * c.num_slots, C]), o: mat(`${a}o_proj.weight`, [C, Vd]),
        g_norm: c.elementwise_affine ? vec(`${a}g_norm.weight`, [c.head_v_dim]) : null,
        mlp: loadMlp(r, o, l, C, c.intermediate_size),
      });
    }
    const D = c.head_k_dim;
    const rope = c.use_rope
      ? o.weight('rope', { shape: [2, ABC_MAX_POSITIONS, D / 2], dtype: 'f32', f32: ropeTable(invFreq(ROPE_BASE, D), ABC_MAX_POSITIONS) }, false)
      : null;
    return { frame: loadFrame(r, o, C, c.vocab_size, c.tie_word_embeddings), layers, rope };
  },

  async forward(o, w, c, pick) {
    const C = c.hidden_size, eps = c.norm_eps, DK = c.head_k_dim;
    const x = await embedTokens(o, w.frame, C);
    const h = o.act('h', C);
    const q = o.act('q', c.key_dim), k = o.act('k', c.key_dim), v = o.act('v', c.value_dim), s = o.act('s', c.num_heads * c.num_slots);
    const g = o.act('g', c.value_dim), att = o.act('att', c.value_dim), on = o.act('att_n', c.value_dim);
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l]!;
      await rmsNorm(o, x, L.attn_norm, h, { eps });
      await matmul(o, h, L.q, null, 'none', q);
      await matmul(o, h, L.k, null, 'none', k);
      await matmul(o, h, L.v, null, 'none', v);
      await matmul(o, h, L.s, null, 'none', s);
      if (w.rope) {
        await rope(o, q, w.rope, { D: DK, R: DK });
        await rope(o, k, w.rope, { D: DK, R: DK });
      }
      await abc(o, {
        q, k, v, s, state: o.state(`${l}.S`), out: att, H: c.num_heads, DK, DV: c.head_v_dim, M: c.num_slots,
        scale: DK ** -0.5, clampMin: c.clamp_min, clampMax: c.clamp_max,
      });
      await matmul(o, h, L.g, null, 'none', g);
      await rmsNorm(o, att, L.g_norm, on, { eps, headDim: c.head_v_dim, gate: g });
      await matmul(o, on, L.o, null, 'none', x, true);
      await mlpBlock(o, L.mlp, x, eps);
    }
    return logitsOf(o, w.frame, x, eps, pick);
  },
});
