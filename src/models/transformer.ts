// fla `transformer` (TransformerForCausalLM; spec-deltanet-attention-qwen3next.md §6): fla's skeleton (§2) with
// GQA softmax attention (optional q/k norm with eps 1e-5, q/k/v biases, sliding window) and a SwiGLU MLP.
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import { defineArch } from './arch.ts';
import { attnState, decoderForward, loadAttention, loadHead, loadMlp, ropeWeight, MAX_ROPE_TABLE, type AttnConfig, type DecoderLayer, type DecoderWeights } from './blocks.ts';

export interface TransformerConfig {
  hidden_size: number; num_hidden_layers: number; intermediate_size: number; vocab_size: number;
  norm_eps: number; tie_word_embeddings: boolean; qkv_bias: boolean; max_position_embeddings: number; attn: AttnConfig;
}


export default defineArch<TransformerConfig, DecoderWeights>({
  modelTypes: ['transformer'],

  parseConfig(j, where) {
    const C = int(j, 'hidden_size', where, 2048), H = int(j, 'num_heads', where, 32);
    const KV = optInt(j, 'num_kv_heads', where) ?? H;
    if (C % H || H % KV) unsupported(where, 'num_kv_heads', KV, `a divisor of num_heads (${H}), with num_heads dividing hidden_size`);
    if (j.attnres_block_size !== undefined && j.attnres_block_size !== null) unsupported(where, 'attnres_block_size', j.attnres_block_size, 'null');
    const act = str(j, 'hidden_act', where, 'swish');
    if (act !== 'swish') unsupported(where, 'hidden_act', act, '"swish"');
    const I = optInt(j, 'intermediate_size', where) ?? 256 * Math.ceil(Math.trunc(C * num(j, 'hidden_ratio', where, 4) * 2 / 3) / 256);
    const maxPos = int(j, 'max_position_embeddings', where, 2048);
    return {
      hidden_size: C, num_hidden_layers: int(j, 'num_hidden_layers', where, 24), intermediate_size: I, vocab_size: int(j, 'vocab_size', where, 32000),
      norm_eps: num(j, 'norm_eps', where, 1e-6), tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false), qkv_bias: bool(j, 'qkv_bias', where, false),
      max_position_embeddings: maxPos,
      attn: {
        H, KV, D: C / H, R: C / H, theta: num(j, 'rope_theta', where, 10000), scaling: { type: 'default' }, maxPos: Math.min(maxPos, MAX_ROPE_TABLE),
        qkNormEps: bool(j, 'qk_norm', where, false) ? 1e-5 : null, zeroCentred: false, window: optInt(j, 'window_size', where) ?? 0,
      },
    };
  },

  // fla grows its rotary table on demand; we size it (and the context) by max_position_embeddings
  dims: c => ({ hidden: c.hidden_size, vocab: c.vocab_size, maxContext: c.attn.maxPos }),

  state: (c, ctx) => Array.from({ length: c.num_hidden_layers }, (_, l) => attnState(c.attn, l, ctx)).flat(),

  load(c, r, o) {
    const C = c.hidden_size;
    const vec = (n: string) => o.weight(n, r.read(n, [C]), false);
    const table = ropeWeight(c.attn, o);
    const layers: DecoderLayer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}attn.`;
      layers.push({
        norm1: vec(`${p}attn_norm.weight`), norm2: vec(`${p}mlp_norm.weight`),
        attn: loadAttention(c.attn, r, o, C, { q: `${a}q_proj`, k: `${a}k_proj`, v: `${a}v_proj`, o: `${a}o_proj`, qn: `${a}q_norm`, kn: `${a}k_norm` },
          { qkv: c.qkv_bias, o: false }, table),
        mlp: loadMlp(r, o, `${p}mlp`, C, c.intermediate_size),
      });
    }
    const emb = o.weight('model.embeddings.weight', r.read('model.embeddings.weight', [c.vocab_size, C]), true);
    return { emb, layers, norm: vec('model.norm.weight'), head: loadHead(r, o, emb, c.tie_word_embeddings, c.vocab_size, C) };
  },

  forward: (o, w, c, pick) => decoderForward(o, w, { hidden: c.hidden_size, eps: c.norm_eps, attn: c.attn }, pick),
});
