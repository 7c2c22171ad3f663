// Golden tests of `qwen3_moe` against transformers' fp32 outputs on the repository's own fixture
// test/fixtures/qwen3_moe-tiny (made by test/fixtures/gen/make.py: 7 experts top-3, a dense mlp_only layer),
// the same checkpoint re-saved with one module per expert, and as an fp8 checkpoint (F8_E4M3 + weight_scale_inv,
// quantization_config fp8) whose logits equal those of its dequantized f32 copy; bad fp8 checkpoints are one-line errors.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHAPES } from '../../../src/bench/synthetic.ts';
import { inspectModel, inspectModelConfig, loadWeights } from '../../../src/runtime/model.ts';
import { readTensorFile, writeSafetensors, type StDtype } from '../../../src/load/safetensors.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import type { GpuBackend } from '../../../src/backend/gpu.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { perExpert, toE4m3, writeFp8 } from '../../helpers/fp8_checkpoint.ts';
import { goldenSuite } from '../../helpers/golden.ts';
import { BACKENDS, engine, reference, relErr } from '../../helpers/model.ts';

// the f32 one-module-per-expert copy against the reference, sequences 1 and 5: measured 3.50e-6 (CPU backend),
// 1.64e-6 (lavapipe), 2026-12-02 (vocab 96 regeneration)
const TOL = 7e-6;
goldenSuite('qwen3_moe-tiny');

const dir = fixture('qwen3_moe-tiny');
type T = { dtype: StDtype; shape: number[]; data: ArrayBufferView };

const QUANT = (n: string) => /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/.test(n);

describe.skipIf(!dir)('qwen3_moe-tiny other checkpoint layouts', () => {
  const tmp = () => mkdtempSync(join(tmpdir(), 'fla-qwen3moe-'));

  for (const kind of BACKENDS) test(`${kind}: one module per expert (f32) gives the reference logits`, async () => {
    const out = tmp();
    try {
      writeFileSync(join(out, 'config.json'), readFileSync(join(dir!, 'config.json')));
      const t = perExpert(dir!);
      writeSafetensors(join(out, 'model.safetensors'), Object.fromEntries(Object.entries(t).map(([n, v]) => [n, { dtype: 'F32' as const, ...v }])));
      const ref = reference(dir!), e = engine(out, kind);
      for (const i of [1, 5]) {
        const slot = e.acquire();
        const [got] = await e.run([{ slot, tokens: ref.ints(`input_ids.${i}`), keepAll: true }]);
        e.release(slot);
        expect(relErr(got!, ref.floats(`logits.${i}`)), `sequence ${i}`).toBeLessThan(TOL);
      }
    } finally { rmSync(out, { recursive: true, force: true }); }
  }, 120_000);

  for (const kind of BACKENDS) test(`${kind}: fp8 checkpoint (blocks 32×32, bytes kept) equals its dequantized f32 copy; prefill then decode`, async () => {
    const a = tmp(), b = tmp();
    try {
      // e4m3 keeps 3 mantissa bits: at most half a step (2⁻⁴ relative) off within a block, up to the subnormals
      expect(writeFp8(dir!, QUANT, a, b, 32, 32)).toBeLessThan(1 / 16);
      const ref = reference(dir!), ids = ref.ints('input_ids.5');
      const fp8 = engine(a, kind), f32 = engine(b, 'cpu');
      if (kind === 'gpu') {   // the quantized matrices stay bytes on the GPU: far less than the f32 copy
        const f32gpu = engine(b, 'gpu');
        expect((fp8.model.backend as GpuBackend).uploadedBytes).toBeLessThan(0.5 * (f32gpu.model.backend as GpuBackend).uploadedBytes);
      }
      const s1 = fp8.acquire(), s2 = f32.acquire();
      const x = (await fp8.run([{ slot: s1, tokens: ids.slice(0, 100), keepAll: true }]))[0]!;
      const y = (await f32.run([{ slot: s2, tokens: ids.slice(0, 100), keepAll: true }]))[0]!;
      expect(relErr(x, y), 'prefill').toBeLessThan(1e-5);
      for (const t of ids.slice(100, 104)) {
        const [dx] = await fp8.run([{ slot: s1, tokens: [t] }]), [dy] = await f32.run([{ slot: s2, tokens: [t] }]);
        expect(relErr(dx!, dy!), 'decode').toBeLessThan(1e-5);
      }
    } finally { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); }
  }, 300_000);

  test('bad fp8 checkpoints: one-line errors naming the tensor', () => {
    const a = tmp(), b = tmp();
    try {
      writeFp8(dir!, QUANT, a, b, 32, 32);
      const load = () => loadWeights(inspectModel(a), new CpuBackend());
      const st = readTensorFile(join(a, 'model.safetensors'));
      const save = (drop: (n: string) => boolean, edit?: (n: string, t: T) => T) => {
        const out: Record<string, T> = {};
        for (const [n, t] of st) if (!drop(n)) {
          const v: T = { dtype: t.dtype, shape: t.shape, data: t.dtype === 'F8_E4M3' ? Uint8Array.from(t.data as Float32Array, toE4m3) : t.data };
          out[n] = edit ? edit(n, v) : v;
        }
        writeSafetensors(join(a, 'model.safetensors'), out);
      };
      const cfg = JSON.parse(readFileSync(join(a, 'config.json'), 'utf8'));
      // missing scales
      save(n => n === 'model.layers.0.self_attn.k_proj.weight_scale_inv');
      expect(load).toThrow(/tensor model\.layers\.0\.self_attn\.k_proj\.weight is F8_E4M3 but its block scales model\.layers\.0\.self_attn\.k_proj\.weight_scale_inv are missing$/);
      // wrong block size: scales for 32×32 blocks, config says 64×64
      save(() => false);
      writeFileSync(join(a, 'config.json'), JSON.stringify({ ...cfg, quantization_config: { ...cfg.quantization_config, weight_block_size: [64, 64] } }));
      expect(load).toThrow(/tensor model\.layers\.0\.self_attn\.q_proj\.weight_scale_inv has shape \[2,2\], expected \[1,1\] for model\.layers\.0\.self_attn\.q_proj\.weight/);
      writeFileSync(join(a, 'config.json'), JSON.stringify({ ...cfg, quantization_config: { ...cfg.quantization_config, weight_block_size: [30, 32] } }));
      expect(load).toThrow(/weight_block_size \[30,32\] is not supported/);
      // unknown quant_method: refused from config.json alone
      writeFileSync(join(a, 'config.json'), JSON.stringify({ ...cfg, quantization_config: { quant_method: 'gptq', bits: 4 } }));
      expect(() => inspectModel(a)).toThrow(/quantization_config\.quant_method "gptq" is not supported \(expected "fp8"\)/);
      // fp8 tensors without a quantization_config
      const { quantization_config: _, ...plain } = cfg;
      writeFileSync(join(a, 'config.json'), JSON.stringify(plain));
      expect(load).toThrow(/tensor model\.layers\.0\.self_attn\.q_proj\.weight is F8_E4M3 but config\.json has no fp8 quantization_config/);
    } finally { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); }
  }, 120_000);
});

/** readTensorFile gives F8 values as f32; back to their bytes (exact: every value came from a byte). */

test('synthetic MoE shapes parse as their published configs', () => {
  const next = inspectModelConfig('synthetic', { ...SHAPES['qwen3_next-80b-a3b']! }).cfg;
  expect([next.num_hidden_layers, next.layer_types.filter((t: string) => t === 'full_attention').length, next.num_experts, next.num_experts_per_tok]).toEqual([48, 12, 512, 10]);
  expect([next.attn.H, next.attn.KV, next.attn.D, next.attn.R, next.gdn.H, next.gdn.HV, next.gdn.DK, next.attn.maxPos]).toEqual([16, 2, 256, 64, 16, 32, 128, 262144]);
  expect(inspectModelConfig('synthetic', { ...SHAPES['qwen3_next-80b-a3b-e64']! }).cfg.num_experts).toBe(64);
  const moe = inspectModelConfig('synthetic', { ...SHAPES['qwen3_moe-30b-a3b']! }).cfg;
  expect([moe.num_hidden_layers, moe.num_experts, moe.num_experts_per_tok, moe.moe.every((m: boolean) => m)]).toEqual([48, 128, 8, true]);
});
