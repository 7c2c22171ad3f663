// Hugging Face Qwen3-MoE (`qwen3_moe`, Qwen3MoeForCausalLM: Qwen3-30B-A3B, Qwen3-235B-A22B): the Qwen3 decoder
// (GQA attention with per-head q/k RMSNorm and RoPE) whose MLP is a sparse MoE of routed experts (router softmax,
// top-k, norm_topk_prob; no shared expert) on layers (i+1) % decoder_sparse_step == 0 outside mlp_only_layers, a dense
// SwiGLU MLP of intermediate_size elsewhere. The experts run routed (moe.ts): only the chosen ones.
import { embed } from '../../kernels/embed/embed.ts';
import type { ExpertWeights } from '../../kernels/moe/moe_experts.ts';
import { rmsNorm } from '../../kernels/norm/rms_norm.ts';
import type { Weight } from '../backend/backend.ts';
import { bool, int, num, optInt, str, unsupported } from '../load/config.ts';
import { defineArch } from './arch.ts';
import { attention, attnState, headRmsNorm, loadAttention, loadHead, loadMlp, logits, mlp, ropeConfig, ropeWeight, type AttnConfig, type AttnWeights, type MlpWeights } from './blocks.ts';
import { denseMlp, hasFp8, loadExperts, loadRouter, normWeight, routedExperts } from './moe.ts';

export interface Qwen3MoeConfig {
  hidden_size: number; num_hidden_layers: number; vocab_size: number; rms_norm_eps: number; tie_word_embeddings: boolean;
  max_position_embeddings: number; attention_bias: boolean; attn: AttnConfig;
  /** per layer: sparse MoE (true) or dense MLP of intermediate_size */
  moe: boolean[];
  intermediate_size: number; moe_intermediate_size: number;
  num_experts: number; num_experts_per_tok: number; norm_topk_prob: boolean;
}

interface Layer { norm1: Weight; norm2: Weight; attn: AttnWeights; router: Weight | null; experts: ExpertWeights | null; mlp: MlpWeights | null }
interface Weights { emb: Weight; layers: Layer[]; norm: Weight; head: Weight }

export default defineArch<Qwen3MoeConfig, Weights>({
  modelTypes: ['qwen3_moe'],

  parseConfig(j, where) {
    const C = int(j, 'hidden_size', where), L = int(j, 'num_hidden_layers', where), H = int(j, 'num_attention_heads', where, 32);
    const KV = optInt(j, 'num_key_value_heads', where) ?? H;
    if (H % KV) unsupported(where, 'num_key_value_heads', KV, `a divisor of num_attention_heads (${H})`);
    const D = optInt(j, 'head_dim', where) ?? C / H;
    if (!Number.isInteger(D)) unsupported(where, 'head_dim', D, 'an integer');
    const act = str(j, 'hidden_act', where, 'silu');
    if (act !== 'silu') unsupported(where, 'hidden_act', act, '"silu"');
    if (j.use_sliding_window === true) unsupported(where, 'use_sliding_window', true, 'false');
    const { theta, scaling } = ropeConfig(j, where);
    const eps = num(j, 'rms_norm_eps', where, 1e-6), maxPos = int(j, 'max_position_embeddings', where, 32768);
    // the published configs say num_experts; transformers 5 writes its alias num_local_experts
    const E = j.num_experts === undefined && j.num_local_experts !== undefined ? int(j, 'num_local_experts', where, 128, 0) : int(j, 'num_experts', where, 128, 0);
    const K = int(j, 'num_experts_per_tok', where, 8);
    if (E > 0 && K > E) unsupported(where, 'num_experts_per_tok', K, `at most num_experts = ${E}`);
    const I = int(j, 'moe_intermediate_size', where, 768);
    if (E > 0 && (C % 4 || I % 4)) unsupported(where, 'moe_intermediate_size', I, `a multiple of 4 (and hidden_size ${C} too)`);
    const step = int(j, 'decoder_sparse_step', where, 1);
    const mlpOnly = Array.isArray(j.mlp_only_layers) ? (j.mlp_only_layers as unknown[]) : [];
    return {
      hidden_size: C, num_hidden_layers: L, vocab_size: int(j, 'vocab_size', where, 151936), rms_norm_eps: eps,
      tie_word_embeddings: bool(j, 'tie_word_embeddings', where, false), max_position_embeddings: maxPos,
      attention_bias: bool(j, 'attention_bias', where, false),
      attn: { H, KV, D, R: D, theta, scaling, maxPos: Math.min(maxPos, 65536), qkNormEps: eps, zeroCentred: false, window: 0 },
      moe: Array.from({ length: L }, (_, i) => E > 0 && (i + 1) % step === 0 && !mlpOnly.includes(i)),
      intermediate_size: int(j, 'intermediate_size', where, 6144), moe_intermediate_size: I,
      num_experts: E, num_experts_per_tok: K, norm_topk_prob: bool(j, 'norm_topk_prob', where, false),
    };
  },

  dims: c => ({
    hidden: c.hidden_size, vocab: c.vocab_size, maxContext: Math.min(c.max_position_embeddings, 65536),
    maxPlanes: Math.ceil(Math.max(c.hidden_size, c.intermediate_size, c.attn.H * c.attn.D, c.num_experts,
      c.num_experts_per_tok * Math.max(c.hidden_size, c.moe_intermediate_size) + 64) / c.hidden_size),
  }),

  state: (c, ctx) => Array.from({ length: c.num_hidden_layers }, (_, l) => attnState(c.attn, l, ctx)).flat(),

  load(c, r, o) {
    const C = c.hidden_size;
    const vec = (n: string) => o.weight(n, r.read(n, [C]), false);
    const table = ropeWeight(c.attn, o);
    r.ignore(n => n.endsWith('rotary_emb.inv_freq'));
    const layers: Layer[] = [];
    for (let l = 0; l < c.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`, a = `${p}self_attn.`, m = `${p}mlp.`;
      layers.push({
        norm1: normWeight(r, o, `${p}input_layernorm.weight`, C, false), norm2: normWeight(r, o, `${p}post_attention_layernorm.weight`, C, false),
        attn: loadAttention(c.attn, r, o, C, { q: `${a}q_proj`, k: `${a}k_proj`, v: `${a}v_proj`, o: `${a}o_proj`, qn: `${a}q_norm`, kn: `${a}k_norm` },
          { qkv: c.attention_bias, o: c.attention_bias }, table),
        router: c.moe[l] ? loadRouter(r, o, `${m}gate`, c.num_experts, C, null) : null,
        experts: c.moe[l] ? loadExperts(r, o, `${m}experts`, c.num_experts, c.moe_intermediate_size, C) : null,
        mlp: c.moe[l] ? null : loadMlp(r, o, `${p}mlp`, C, c.intermediate_size),
      });
    }
    const emb = o.weight('model.embed_tokens.weight', r.read('model.embed_tokens.weight', [c.vocab_size, C]), true);
    return { emb, layers, norm: vec('model.norm.weight'), head: loadHead(r, o, emb, c.tie_word_embeddings, c.vocab_size, C) };
  },

  async forward(o, w, c, pick) {
    const C = c.hidden_size, eps = c.rms_norm_eps;
    const x = o.act('x', C), h = o.act('h', C);
    await embed(o, w.emb, x);
    for (let l = 0; l < w.layers.length; l++) {
      const L = w.layers[l]!;
      // the input norm inside the q|k|v GEMV (matmul_multi reads no fp8: a separate rms_norm then)
      if (!hasFp8(L.attn.q, L.attn.k, L.attn.v)) await attention(o, L.attn, c.attn, l, h, x, { w: L.norm1, eps });
      else {
        await rmsNorm(o, x, L.norm1, h, { eps });
        await attention(o, L.attn, c.attn, l, h, x);
      }
      // the post-attention norm runs inside the router GEMV and the experts' gate|up (or the MLP's gate|up)
      if (L.experts) await routedExperts(o, L.router!, L.experts, c.num_experts_per_tok, c.norm_topk_prob, x, h, { w: L.norm2, eps });
      else await denseMlp(o, L.mlp!, x, h, { w: L.norm2, eps });
    }
    return logits(o, x, w.head, headRmsNorm(o, w.norm, eps), pick);
  },
});
