// fla linear attention (`linear_attn`, LinearAttentionForCausalLM): spec-deltanet-attention-qwen3next.md §5.
// q/k feature maps, optional q/k and output normalisation, the un-decayed linear recurrence (the gla op without
// gate), per-head RMSNorm, heads merged head-major before o_proj; SwiGLU MLP.
import { gla } from '../../kernels/gla/gla.ts';
import { glaStateCols } from '../../kernels/gla/gla.ref.ts';
import { featureMap } from '../../kernels/linear_attn/feature_map.ts';
import { FEATURE_LAYERS, FEATURE_MAP, type FeatureMap } from '../../kernels/linear_attn/feature_map.ref.ts';
import { matmul } from '../../kernels/matmul/matmul.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Backend, Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import type { WeightReader } from '../load/weights.ts';
import { defineArch } from './arch.ts';
import { checkSkeleton, embedTokens, expandDim, loadFrame, loadMlp, logitsOf, mlpBlock, mlpWidth, type Frame, type Mlp } from './linear_common.ts';

export interface LinearAttnConfig {
  hidden_size: number; num_hidden_layers: number; num_heads: number; num_kv_heads: number;
  key_dim: number; value_dim: number; head_k_dim: number; head_v_dim: number;
  feature_map: FeatureMap; tie_feature_map_qk: boolean; norm_q: boolean; norm_k: boolean; norm_feature_map: boolean;
  elementwise_affine: boolean; norm_eps: number; intermediate_size: number; vocab_size: number; tie_word_embeddings: boolean;
}

interface Fm { W: Weight | null; b: Weight | null }
interface Layer { attn_norm: Weight; q: Weight; k: Weight; v: Weight; o: Weight; fq: Fm; fk: Fm; norm: Weight | null; mlp: Mlp }
interface Weights { frame: Frame; layers: Layer[] }

function loadFm(c: LinearAttnConfig, r: WeightReader, o: Backend, prefix: string): Fm {
  const n = FEATURE_LAYERS[c.feature_map], DK = c.head_k_dim;
  if (n === 0) return { W: null, b: null };
  const names = n === 2 ? ['layer1', 'layer2'] : ['layer'];
  const W = o.weight(`${prefix}.W`, r.stack(names.map(x => `${prefix}.${x}.weight`), DK * DK), false);
  const hasBias = names.every(x => r.has(`${prefix}.${x}.bias`));
  const b = hasBias ? o.weight(`${prefix}.b`, r.stack(names.map(x => `${prefix}.${x}.bias`), DK), false) : null;
  return { W, b };
}

export default defineArch<LinearAttnConfig, Weights>({
  modelTypes: ['linear_attn'],

  parseConfig(j, where) {
    checkSkeleton(j, where);
    const C = int(j, 'hidden_size', where, 2048);
    const H = int(j, 'num_heads', where, 4);
    const KV = optInt(j, 'num_kv_heads', where) ?? H;
    if (H % KV !== 0) unsupported(where, 'num_kv_heads', KV, `a divisor of num_heads (${H})`);
    const K = expandDim(j, 'expand_k', 1, C, H, where), V = expandDim(j, 'expand_v', 1, C, H, where);
    const fm = str(j, 'feature_map', where, 'elementwise_product');
    if (!(fm in FEATURE_MAP)) unsupported(where, 'feature_map', fm, Object.keys(FEATURE_MAP).map(x => `"${x}"`).join(', '));
    const om = j.output_norm ?? 'rmsnorm';
    if (om !== 'rmsnorm') unsupported(where, 'output_norm', om, '"rmsnorm"');
    return {
      hidden_size: C, num_hidden_layers: int(j, 'num_hidden_layers', where, 24), num_heads: H, num_kv_heads: KV,
      key_dim: K.total, value_dim: V.total, head_k_dim: K.head, head_v_dim: V.head, feature_map: fm as FeatureMap,
      tie_feature_map_qk: bool(j, 'tie_feature_map_qk', where, false), norm_q: bool(j, 'norm_q', where, false),
      norm_k: bool(j, 'norm_k', where, false), norm_feature_map: bool(j, 'norm_feature_map', where, false),
      elementwise_affine: bool(j, 'elementwise_affine', where, true), norm_eps: num(j, 'norm_eps', where, 1e-6),
      intermediate_size: mlpWidth(j, where, C), vocab_size: int(j, 'vocab_size', where, 32000),
      tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false),
    };
  },

  dims: c => ({
    hidden: c.hidden_size, vocab: c.vocab_size, maxContext: null,
  }),

  state(c) {
    const cols = glaStateCols({ H: c.num_heads, DK: c.head_k_dim, DV: c.head_v_dim, normalize: c.norm_feature_map });
    return Array.from({ length: c.num_hidden_layers }, (_, l) => ({ key: `${l}.S`, cols }));
  },

  load(c, r, o) {
    const C = c.hidden_size, G = c.num_heads / c.num_kv_heads, Kd = c.key_dim, Vd = c.value_dim;
    const mat = (n: string, s: number[]) => o.weight(n, r.read(n, s), true);
    const vec = (n: string, s: number[]) => o.weight(n, r.read(n, s), false);
    const layers: Layer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}attn.`;
      const fq = `${a}feature_map_q`, fk = `${a}feature_map_k`;
      let mq: Fm, mk: Fm;
      if (c.tie_feature_map_qk && FEATURE_LAYERS[c.feature_map] > 0) {
        // one module under either name (or both): read the q copy when present, ignore the other
        const first = [...(r as WeightReader).ckpt.tensors.keys()].some(n => n.startsWith(`${fq}.`)) ? fq : fk;
        mq = mk = loadFm(c, r, o, first);
        const other = first === fq ? fk : fq;
        r.ignore(n => n.startsWith(`${other}.`));
      } else { mq = loadFm(c, r, o, fq); mk = loadFm(c, r, o, fk); }
      layers.push({
        attn_norm: vec(`${p}attn_norm.weight`, [C]),
        q: mat(`${a}q_proj.weight`, [Kd, C]), k: mat(`${a}k_proj.weight`, [Kd / G, C]), v: mat(`${a}v_proj.weight`, [Vd / G, C]),
        o: mat(`${a}o_proj.weight`, [C, Vd]), fq: mq, fk: mk,
        norm: c.elementwise_affine ? vec(`${a}norm.weight`, [c.head_v_dim]) : null,
        mlp: loadMlp(r, o, l, C, c.intermediate_size),
      });
    }
    return { frame: loadFrame(r, o, C, c.vocab_size, c.tie_word_embeddings), layers };
  },

  async forward(o, w, c, pick) {
    const C = c.hidden_size, eps = c.norm_eps, G = c.num_heads / c.num_kv_heads, DK = c.head_k_dim;
    const x = await embedTokens(o, w.frame, C);
    const h = o.act('h', C);
    const q = o.act('q', c.key_dim), k = o.act('k', c.key_dim / G), v = o.act('v', c.value_dim / G);
    const fq = o.act('fq', c.key_dim), fk = o.act('fk', c.key_dim / G);
    const att = o.act('att', c.value_dim), on = o.act('att_n', c.value_dim);
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l]!;
      await rmsNorm(o, x, L.attn_norm, h, { eps });
      await matmul(o, h, L.q, null, 'none', q);
      await matmul(o, h, L.k, null, 'none', k);
      await matmul(o, h, L.v, null, 'none', v);
      // the maps act per head vector, so mapping the kv heads before the GQA repeat is the same as after it
      await featureMap(o, q, L.fq.W, L.fq.b, fq, { map: c.feature_map, DK, norm: c.norm_q });
      await featureMap(o, k, L.fk.W, L.fk.b, fk, { map: c.feature_map, DK, norm: c.norm_k });
      await gla(o, {
        q: fq, k: fk, v, gk: null, state: o.state(`${l}.S`), out: att, H: c.num_heads, HKV: c.num_kv_heads, DK, DV: c.head_v_dim,
        scale: DK ** -0.5, normalize: c.norm_feature_map,
      });
      await rmsNorm(o, att, L.norm, on, { eps, headDim: c.head_v_dim });
      await matmul(o, on, L.o, null, 'none', x, true);
      await mlpBlock(o, L.mlp, x, eps);
    }
    return logitsOf(o, w.frame, x, eps, pick);
  },
});
