// Hugging Face Llama, Qwen2 and Qwen3 (spec-deltanet-attention-qwen3next.md §7): RMSNorm → GQA attention with
// RoPE and a KV cache (Qwen2: q/k/v biases; Qwen3: per-head q/k RMSNorm) → SwiGLU MLP.
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import { defineArch } from './arch.ts';
import { attnState, decoderForward, loadAttention, loadHead, loadMlp, ropeConfig, ropeWeight, type AttnConfig, type DecoderLayer, type DecoderWeights } from './blocks.ts';

export interface LlamaConfig {
  model_type: 'llama' | 'qwen2' | 'qwen3';
  hidden_size: number; num_hidden_layers: number; intermediate_size: number; vocab_size: number;
  rms_norm_eps: number; tie_word_embeddings: boolean; attention_bias: boolean; mlp_bias: boolean;
  max_position_embeddings: number; attn: AttnConfig;
}


export default defineArch<LlamaConfig, DecoderWeights>({
  modelTypes: ['llama', 'qwen2', 'qwen3'],

  parseConfig(j, where) {
    const model_type = j.model_type as LlamaConfig['model_type'];
    const C = int(j, 'hidden_size', where), H = int(j, 'num_attention_heads', where);
    const KV = optInt(j, 'num_key_value_heads', where) ?? H;
    const D = optInt(j, 'head_dim', where) ?? C / H;
    if (!Number.isInteger(D) || H % KV) unsupported(where, 'num_key_value_heads', KV, `a divisor of num_attention_heads (${H})`);
    const act = str(j, 'hidden_act', where, 'silu');
    if (act !== 'silu') unsupported(where, 'hidden_act', act, '"silu"');
    if (j.use_sliding_window === true) unsupported(where, 'use_sliding_window', true, 'false');
    if (Array.isArray(j.layer_types) && j.layer_types.some(t => t !== 'full_attention')) unsupported(where, 'layer_types', j.layer_types, 'all "full_attention"');
    const { theta, scaling } = ropeConfig(j, where);
    const eps = num(j, 'rms_norm_eps', where, 1e-6);
    const maxPos = int(j, 'max_position_embeddings', where, 2048);
    return {
      model_type, hidden_size: C, num_hidden_layers: int(j, 'num_hidden_layers', where), intermediate_size: int(j, 'intermediate_size', where),
      vocab_size: int(j, 'vocab_size', where), rms_norm_eps: eps, tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false),
      attention_bias: bool(j, 'attention_bias', where, false), mlp_bias: bool(j, 'mlp_bias', where, false), max_position_embeddings: maxPos,
      attn: { H, KV, D, R: D, theta, scaling, maxPos, qkNormEps: model_type === 'qwen3' ? eps : null, zeroCentred: false, window: 0 },
    };
  },

  dims: c => ({ hidden: c.hidden_size, vocab: c.vocab_size, maxContext: Math.min(c.max_position_embeddings, 65536) }),

  state: (c, ctx) => Array.from({ length: c.num_hidden_layers }, (_, l) => attnState(c.attn, l, ctx)).flat(),

  load(c, r, o) {
    const C = c.hidden_size;
    const vec = (n: string) => o.weight(n, r.read(n, [C]), false);
    const table = ropeWeight(c.attn, o);
    const qkvBias = c.model_type === 'qwen2' || c.attention_bias;
    r.ignore(n => n.endsWith('rotary_emb.inv_freq'));
    const layers: DecoderLayer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}self_attn.`;
      layers.push({
        norm1: vec(`${p}input_layernorm.weight`), norm2: vec(`${p}post_attention_layernorm.weight`),
        attn: loadAttention(c.attn, r, o, C, { q: `${a}q_proj`, k: `${a}k_proj`, v: `${a}v_proj`, o: `${a}o_proj`, qn: `${a}q_norm`, kn: `${a}k_norm` },
          { qkv: qkvBias, o: c.model_type !== 'qwen2' && c.attention_bias }, table),
        mlp: loadMlp(r, o, `${p}mlp`, C, c.intermediate_size, c.mlp_bias),
      });
    }
    const emb = o.weight('model.embed_tokens.weight', r.read('model.embed_tokens.weight', [c.vocab_size, C]), true);
    return { emb, layers, norm: vec('model.norm.weight'), head: loadHead(r, o, emb, c.tie_word_embeddings, c.vocab_size, C) };
  },

  forward: (o, w, c, pick) => decoderForward(o, w, { hidden: c.hidden_size, eps: c.rms_norm_eps, attn: c.attn }, pick),
});
