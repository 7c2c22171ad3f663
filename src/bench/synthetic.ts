// Synthetic checkpoints for `fla bench --synthetic NAME`: real models' shapes (from their published configs) with
// random weights made by the backend itself, so nothing is downloaded or uploaded.
import type { Backend, HostWeight } from '../backend/backend.ts';
import { inspectModelConfig, type Model } from '../runtime/model.ts';
import { WeightReader } from '../load/weights.ts';
import { UsageError } from '../util/errors.ts';

const QWEN3_NEXT_80B: Record<string, unknown> = {
  model_type: 'qwen3_next', hidden_size: 2048, num_hidden_layers: 48, full_attention_interval: 4, vocab_size: 151936, rms_norm_eps: 1e-6,
  num_attention_heads: 16, num_key_value_heads: 2, head_dim: 256, partial_rotary_factor: 0.25, rope_theta: 10000000, max_position_embeddings: 262144,
  linear_num_key_heads: 16, linear_num_value_heads: 32, linear_key_head_dim: 128, linear_value_head_dim: 128, linear_conv_kernel_dim: 4,
  num_experts: 512, num_experts_per_tok: 10, norm_topk_prob: true, moe_intermediate_size: 512, shared_expert_intermediate_size: 512,
  intermediate_size: 5120, decoder_sparse_step: 1, mlp_only_layers: [], tie_word_embeddings: false,
};

/** config.json contents of each synthetic shape. */
export const SHAPES: Record<string, Record<string, unknown>> = {
  // fla-hub/rwkv7-0.1B-world and rwkv7-1.5B-world
  'rwkv7-0.1b': { model_type: 'rwkv7', hidden_size: 768, num_hidden_layers: 12, head_dim: 64, vocab_size: 65536, decay_low_rank_dim: 64, a_low_rank_dim: 64, v_low_rank_dim: 32, gate_low_rank_dim: 128, norm_first: true, fuse_norm: true },
  'rwkv7-1.5b': { model_type: 'rwkv7', hidden_size: 2048, num_hidden_layers: 24, head_dim: 64, vocab_size: 65536, decay_low_rank_dim: 96, a_low_rank_dim: 96, v_low_rank_dim: 64, gate_low_rank_dim: 256, norm_first: true, fuse_norm: true },
  // fla-hub/gated_deltanet-1.3B (hidden 2048, 16 heads of 128 → expand_v 2 → value heads of 256)
  'gated_deltanet-1.3b': { model_type: 'gated_deltanet', hidden_size: 2048, num_hidden_layers: 24, num_heads: 16, head_dim: 128, expand_v: 2, use_gate: true, use_short_conv: true, conv_size: 4, vocab_size: 32000, hidden_ratio: 4, norm_eps: 1e-6 },
  // fla-hub/gla-1.3B
  'gla-1.3b': { model_type: 'gla', hidden_size: 2048, num_hidden_layers: 24, num_heads: 4, expand_k: 0.5, expand_v: 1, use_gk: true, use_output_gate: true, vocab_size: 32000, hidden_ratio: 4, norm_eps: 1e-6 },
  // meta-llama/Llama-3.2-1B
  // Qwen/Qwen3-Next-80B-A3B-Instruct: 48 layers (every 4th gated attention), 512 experts top-10 + shared expert
  'qwen3_next-80b-a3b': QWEN3_NEXT_80B,
  // the same shape with 64 experts (same top-10): decode time should not depend on the expert count
  'qwen3_next-80b-a3b-e64': { ...QWEN3_NEXT_80B, num_experts: 64 },
  'qwen3_next-80b-a3b-e512': QWEN3_NEXT_80B,
  // Qwen/Qwen3-30B-A3B: 48 layers, 128 experts top-8, no shared expert
  'qwen3_moe-30b-a3b': { model_type: 'qwen3_moe', hidden_size: 2048, num_hidden_layers: 48, num_attention_heads: 32, num_key_value_heads: 4, head_dim: 128, intermediate_size: 6144, moe_intermediate_size: 768, num_experts: 128, num_experts_per_tok: 8, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [], vocab_size: 151936, rms_norm_eps: 1e-6, max_position_embeddings: 40960, rope_parameters: { rope_type: 'default', rope_theta: 1000000 }, tie_word_embeddings: false },
  'llama-1b': { model_type: 'llama', hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, rms_norm_eps: 1e-5, max_position_embeddings: 131072, tie_word_embeddings: true, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } },
};

export type SyntheticDtype = 'bf16' | 'fp8';

/**
 * Random weights of the declared shapes; norms get weight 1 and biases 0 so activations stay in range. Matrices
 * (and stacked expert tensors) are bf16; with dtype fp8 the matrices fp8-capable kernels read (readQ) are F8_E4M3 with
 * 128×128 block scales, as the published -FP8 checkpoints (embeddings, routers and lm_head stay bf16).
 */
class SyntheticReader extends WeightReader {
  private seed = 1;
  constructor(readonly dtype: SyntheticDtype = 'bf16') { super(null as never, 'synthetic'); }
  override has(): boolean { return true; }
  override read(name: string, shape: number[]): HostWeight {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length >= 2 && shape.at(-1)! > 1 && shape.at(-2)! > 1) return { shape, dtype: 'bf16', synthetic: { seed: this.seed++, scale: 1 / Math.sqrt(shape.at(-1)!) } };
    const f = new Float32Array(n);
    if (/norm.*weight$|weight$/.test(name) && /norm/.test(name)) f.fill(1);
    else if (!name.endsWith('bias')) for (let i = 0; i < n; i++) f[i] = ((i * 2654435761 + this.seed) % 1000) / 2000;
    this.seed++;
    return { shape, dtype: 'f32', f32: f };
  }
  override readQ(name: string, shape: number[]): HostWeight {
    const w = this.read(name, shape);
    return this.dtype === 'fp8' && w.synthetic && !name.startsWith('lm_head') ? { ...w, dtype: 'fp8' } : w;
  }
  override f32(name: string, shape: number[]): Float32Array { return this.read(name, shape).f32!; }
  override stack(names: string[], width: number): HostWeight {
    const out = new Float32Array(names.length * width);
    names.forEach((n, i) => out.set(this.f32(n, [width]), i * width));
    return { shape: [names.length, width], dtype: 'f32', f32: out };
  }
  override checkAllUsed(): void {}
  override ignore(): void {}
}

export function syntheticModel(name: string, backend: Backend, dtype: SyntheticDtype = 'bf16'): Model {
  const config = SHAPES[name];
  if (!config) throw new UsageError(`--synthetic ${name}: unknown shape (known: ${Object.keys(SHAPES).join(', ')})`);
  if (dtype !== 'bf16' && dtype !== 'fp8') throw new UsageError(`--dtype ${dtype}: expected bf16 or fp8`);
  const info = inspectModelConfig(`synthetic:${name}`, { ...config });
  const weights = info.arch.load(info.cfg, new SyntheticReader(dtype), backend);
  return { ...info, weights, backend };
}
