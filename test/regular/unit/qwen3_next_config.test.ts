// Config parsing of qwen3_next: the tiny fixture's config parses to its shapes (partial rotary, layer types, MoE
// layers), legacy full_attention_interval / mlp_only_layers / decoder_sparse_step are honoured, and options we do
// not implement are refused with UnsupportedModelError naming the field.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import qwen3Next from '../../../src/models/qwen3_next.ts';
import { UnsupportedModelError } from '../../../src/util/errors.ts';
import { fixture } from '../../helpers/fixtures.ts';

const dir = fixture('qwen3_next-tiny');
const cfg = () => JSON.parse(readFileSync(join(dir!, 'config.json'), 'utf8')) as Record<string, unknown>;
const refuses = (f: () => unknown, field: string) => {
  let err: unknown = null;
  try { f(); } catch (e) { err = e; }
  expect(err).toBeInstanceOf(UnsupportedModelError);
  expect((err as Error).message).toContain(field);
};

describe.skipIf(!dir)('qwen3_next config', () => {
  test('the tiny config parses to the fixture shapes', () => {
    const c = qwen3Next.parseConfig(cfg(), 'q');
    expect([c.attn.H, c.attn.KV, c.attn.D, c.attn.R, c.attn.zeroCentred]).toEqual([4, 2, 32, 8, true]);
    expect([c.gdn.H, c.gdn.HV, c.gdn.DK, c.gdn.DV, c.conv_size]).toEqual([2, 4, 32, 32, 4]);
    expect(c.layer_types).toEqual(['linear_attention', 'linear_attention', 'linear_attention', 'full_attention']);
    expect(c.moe).toEqual([true, true, true, true]);
    expect([c.num_experts, c.num_experts_per_tok, c.norm_topk_prob, c.moe_intermediate_size, c.shared_expert_intermediate_size]).toEqual([4, 2, true, 64, 96]);
  });

  test('legacy and dense-layer fields', () => {
    const j = cfg();
    delete j.layer_types;
    const c = qwen3Next.parseConfig({ ...j, num_hidden_layers: 8, full_attention_interval: 4, mlp_only_layers: [0], decoder_sparse_step: 2 }, 'q');
    expect(c.layer_types.map(t => t[0])).toEqual(['l', 'l', 'l', 'f', 'l', 'l', 'l', 'f']);
    expect(c.moe).toEqual([false, true, false, true, false, true, false, true]);
    expect(qwen3Next.parseConfig({ ...j, num_experts: 0 }, 'q').moe).toEqual([false, false, false, false]);
  });

  test('unsupported options name their field', () => {
    refuses(() => qwen3Next.parseConfig({ ...cfg(), hidden_act: 'gelu' }, 'q'), 'hidden_act');
    refuses(() => qwen3Next.parseConfig({ ...cfg(), num_experts_per_tok: 5 }, 'q'), 'num_experts_per_tok');
    refuses(() => qwen3Next.parseConfig({ ...cfg(), layer_types: ['linear_attention', 'sliding_attention', 'linear_attention', 'full_attention'] }, 'q'), 'layer_types');
    refuses(() => qwen3Next.parseConfig({ ...cfg(), linear_num_value_heads: 3 }, 'q'), 'linear_num_value_heads');
    refuses(() => qwen3Next.parseConfig({ ...cfg(), partial_rotary_factor: 0.1 }, 'q'), 'partial_rotary_factor');
    refuses(() => qwen3Next.parseConfig({ ...cfg(), rope_parameters: { rope_type: 'yarn', rope_theta: 10000 } }, 'q'), 'rope_type');
  });
});
