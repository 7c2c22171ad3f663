// GLA (fla `gla`, GLAForCausalLM): spec-rwkv7-gla-abc.md §2. Gated linear attention with a low-rank per-key decay
// gate, optional output gate (fused RMSNorm·silu), GQA kv heads; SwiGLU MLP. One packed step through the layers.
import { gla } from '../../kernels/gla/gla.ts';
import { FMAP, glaStateCols, type Fmap } from '../../kernels/gla/gla.ref.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, unsupported } from '../load/config.ts';
import { defineArch } from './arch.ts';
import { checkSkeleton, embedTokens, expandDim, loadFrame, loadMlp, logitsOf, mlpBlock, mlpWidth, type Frame, type Mlp } from './linear_common.ts';

export interface GlaConfig {
  hidden_size: number; num_hidden_layers: number; num_heads: number; num_kv_heads: number;
  key_dim: number; value_dim: number; head_k_dim: number; head_v_dim: number;
  feature_map: Fmap; use_output_gate: boolean; clamp_min: number | null; norm_eps: number;
  elementwise_affine: boolean; fuse_norm: boolean; intermediate_size: number; vocab_size: number; tie_word_embeddings: boolean;
}

const GATE_LOW_RANK = 16, GATE_NORMALIZER = 16;

interface Layer {
  attn_norm: Weight; q: Weight; k: Weight; v: Weight; g: Weight | null; gk0: Weight; gk1: Weight; gkb: Weight;
  g_norm: Weight | null; o: Weight; mlp: Mlp;
}
interface Weights { frame: Frame; layers: Layer[] }

export default defineArch<GlaConfig, Weights>({
  modelTypes: ['gla'],

  parseConfig(j, where) {
    checkSkeleton(j, where);
    const C = int(j, 'hidden_size', where, 2048);
    const H = int(j, 'num_heads', where, 4);
    const KV = optInt(j, 'num_kv_heads', where) ?? H;
    if (H % KV !== 0) unsupported(where, 'num_kv_heads', KV, `a divisor of num_heads (${H})`);
    const K = expandDim(j, 'expand_k', 0.5, C, H, where), V = expandDim(j, 'expand_v', 1, C, H, where);
    if (bool(j, 'use_short_conv', where, false)) unsupported(where, 'use_short_conv', true, 'false');
    const fm = j.feature_map ?? null;
    const fmap = fm === null ? 'none' : fm === 'silu' ? 'swish' : String(fm);
    if (!(fmap in FMAP)) unsupported(where, 'feature_map', fm, 'null, "relu", "sigmoid", "logsigmoid", "swish", "sqrelu"');
    const cm = j.clamp_min;
    if (cm !== undefined && cm !== null && typeof cm !== 'number') unsupported(where, 'clamp_min', cm, 'null or a number');
    return {
      hidden_size: C, num_hidden_layers: int(j, 'num_hidden_layers', where, 24), num_heads: H, num_kv_heads: KV,
      key_dim: K.total, value_dim: V.total, head_k_dim: K.head, head_v_dim: V.head, feature_map: fmap as Fmap,
      use_output_gate: bool(j, 'use_output_gate', where, true), clamp_min: (cm as number | null | undefined) ?? null,
      norm_eps: num(j, 'norm_eps', where, 1e-6), elementwise_affine: bool(j, 'elementwise_affine', where, true),
      fuse_norm: bool(j, 'fuse_norm', where, true), intermediate_size: mlpWidth(j, where, C),
      vocab_size: int(j, 'vocab_size', where, 32000), tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false),
    };
  },

  dims: c => ({
    hidden: c.hidden_size, vocab: c.vocab_size, maxContext: null,
  }),

  state(c) {
    const cols = glaStateCols({ H: c.num_heads, DK: c.head_k_dim, DV: c.head_v_dim, normalize: false });
    return Array.from({ length: c.num_hidden_layers }, (_, l) => ({ key: `${l}.S`, cols }));
  },

  load(c, r, o) {
    const C = c.hidden_size, G = c.num_heads / c.num_kv_heads, Kd = c.key_dim, Vd = c.value_dim;
    const mat = (n: string, s: number[]) => o.weight(n, r.read(n, s), true);
    const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
    const layers: Layer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}attn.`;
      const fused = c.fuse_norm && c.use_output_gate;   // hidden_act is swish (checked)
      layers.push({
        attn_norm: vec(`${p}attn_norm.weight`, [C]),
        q: mat(`${a}q_proj.weight`, [Kd, C]), k: mat(`${a}k_proj.weight`, [Kd / G, C]), v: mat(`${a}v_proj.weight`, [Vd / G, C]),
        g: c.use_output_gate ? mat(`${a}g_proj.weight`, [Vd, C]) : null,
        gk0: mat(`${a}gk_proj.0.weight`, [GATE_LOW_RANK, C]), gk1: mat(`${a}gk_proj.1.weight`, [Kd / G, GATE_LOW_RANK]),
        gkb: vec(`${a}gk_proj.1.bias`, [Kd / G]),
        g_norm: c.elementwise_affine ? vec(`${a}${fused ? 'g_norm_swish_gate' : 'g_norm'}.weight`, [c.head_v_dim]) : null,
        o: mat(`${a}o_proj.weight`, [C, Vd]), mlp: loadMlp(r, o, l, C, c.intermediate_size),
      });
    }
    return { frame: loadFrame(r, o, C, c.vocab_size, c.tie_word_embeddings), layers };
  },

  async forward(o, w, c, pick) {
    const C = c.hidden_size, eps = c.norm_eps, G = c.num_heads / c.num_kv_heads;
    const x = await embedTokens(o, w.frame, C);
    const h = o.act('h', C);
    const q = o.act('q', c.key_dim), k = o.act('k', c.key_dim / G), v = o.act('v', c.value_dim / G);
    const gk = o.act('gk', c.key_dim / G), lr = o.act('gk_lr', GATE_LOW_RANK);
    const g = o.act('g', c.value_dim), att = o.act('att', c.value_dim), on = o.act('att_n', c.value_dim);
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l]!;
      await rmsNorm(o, x, L.attn_norm, h, { eps });
      await matmul(o, h, L.q, null, 'none', q);
      await matmul(o, h, L.k, null, 'none', k);
      await matmul(o, h, L.v, null, 'none', v);
      await matmul(o, h, L.gk0, null, 'none', lr);
      await matmul(o, lr, L.gk1, L.gkb, 'none', gk);
      await gla(o, {
        q, k, v, gk, state: o.state(`${l}.S`), out: att, H: c.num_heads, HKV: c.num_kv_heads, DK: c.head_k_dim, DV: c.head_v_dim,
        scale: c.head_k_dim ** -0.5, gateNormalizer: GATE_NORMALIZER, clampMin: c.clamp_min, fmap: c.feature_map,
      });
      if (L.g) await matmul(o, h, L.g, null, 'none', g);
      await rmsNorm(o, att, L.g_norm, on, { eps, headDim: c.head_v_dim, gate: L.g ? g : null });
      await matmul(o, on, L.o, null, 'none', x, true);
      await mlpBlock(o, L.mlp, x, eps);
    }
    return logitsOf(o, w.frame, x, eps, pick);
  },
});
