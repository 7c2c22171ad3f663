// Golden tests of `qwen3_next` against the reference implementation's fp32 outputs (../shared/fixtures/qwen3_next-tiny),
// plus the same checkpoint re-saved in the other layouts a Qwen3-Next folder may have: one module per expert
// (experts.{e}.gate_proj/up_proj/down_proj) instead of the fused gate_up_proj, f32 instead of bf16, and the legacy
// full_attention_interval instead of layer_types; and as an fp8 checkpoint (F8_E4M3 + weight_scale_inv, blocks 32×32)
// whose logits equal those of its dequantized f32 copy at prefill and decode (the fp8 GEMVs of matmul_fp8_multi behind
// the norms, the fp8 routed and shared experts folded into moe_gu / moe_down), one sequence and three decoded together.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTensorFile, writeSafetensors } from '../../../src/load/safetensors.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { writeFp8 } from '../../helpers/fp8_checkpoint.ts';
import { goldenSuite } from '../../helpers/golden.ts';
import { BACKENDS, engine, reference, relErr } from '../../helpers/model.ts';

goldenSuite('qwen3_next-tiny');

const dir = fixture('qwen3_next-tiny');
describe.skipIf(!dir)('qwen3_next-tiny other checkpoint layouts', () => {
  test('cpu: per-expert f32 tensors and full_attention_interval give the reference logits', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fla-qwen3next-'));
    try {
      const cfg = JSON.parse(readFileSync(join(dir!, 'config.json'), 'utf8'));
      delete cfg.layer_types;
      cfg.full_attention_interval = 4;
      writeFileSync(join(out, 'config.json'), JSON.stringify(cfg));
      const I = cfg.moe_intermediate_size as number, d = cfg.hidden_size as number;
      const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
      for (const [name, t] of readTensorFile(join(dir!, 'model.safetensors'))) {
        const data = t.data as Float32Array;
        const m = /^(.*\.mlp\.experts)\.(gate_up_proj|down_proj)$/.exec(name);
        if (!m) { tensors[name] = { dtype: 'F32', shape: t.shape, data }; continue; }
        for (let e = 0; e < t.shape[0]!; e++) {
          const p = `${m[1]}.${e}.`;
          if (m[2] === 'gate_up_proj') {
            tensors[`${p}gate_proj.weight`] = { dtype: 'F32', shape: [I, d], data: data.slice(e * 2 * I * d, (e * 2 + 1) * I * d) };
            tensors[`${p}up_proj.weight`] = { dtype: 'F32', shape: [I, d], data: data.slice((e * 2 + 1) * I * d, (e + 1) * 2 * I * d) };
          } else {
            tensors[`${p}down_proj.weight`] = { dtype: 'F32', shape: [d, I], data: data.slice(e * d * I, (e + 1) * d * I) };
          }
        }
      }
      writeSafetensors(join(out, 'model.safetensors'), tensors);
      const ref = reference(dir!), e = engine(out, 'cpu');
      for (const i of [1, 4]) {
        const slot = e.acquire();
        const [got] = await e.run([{ slot, tokens: ref.ints(`input_ids.${i}`), keepAll: true }]);
        e.release(slot);
        expect(relErr(got!, ref.floats(`logits.${i}`)), `sequence ${i}`).toBeLessThan(1e-4);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

const QUANT = (n: string) => /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|in_proj_qkvz|in_proj_ba|out_proj)\.weight$/.test(n);

describe.skipIf(!dir)('qwen3_next-tiny fp8', () => {
  for (const kind of BACKENDS) test(`${kind}: fp8 checkpoint (blocks 32×32, bytes kept) equals its dequantized f32 copy; prefill then decode`, async () => {
    const a = mkdtempSync(join(tmpdir(), 'fla-qwen3next-fp8-')), b = mkdtempSync(join(tmpdir(), 'fla-qwen3next-f32-'));
    try {
      writeFp8(dir!, QUANT, a, b, 32, 32);
      const ref = reference(dir!), ids = ref.ints('input_ids.4');
      const fp8 = engine(a, kind), f32 = engine(b, 'cpu');
      const s1 = fp8.acquire(), s2 = f32.acquire();
      const x = (await fp8.run([{ slot: s1, tokens: ids.slice(0, 40), keepAll: true }]))[0]!;
      const y = (await f32.run([{ slot: s2, tokens: ids.slice(0, 40), keepAll: true }]))[0]!;
      expect(relErr(x, y), 'prefill').toBeLessThan(1e-5);
      for (const t of ids.slice(40, 44)) {
        const [dx] = await fp8.run([{ slot: s1, tokens: [t] }]), [dy] = await f32.run([{ slot: s2, tokens: [t] }]);
        expect(relErr(dx!, dy!), 'decode').toBeLessThan(1e-5);
      }
      // batched decode (the conv in the in_proj GEMV's epilogue, one history per slot): three sequences of one token a
      // step equal the f32 copy run one sequence at a time
      const sa = [s1, fp8.acquire(), fp8.acquire()], sb = [s2, f32.acquire(), f32.acquire()], pre = [ids.slice(0, 7), ids.slice(3, 20)];
      for (let i = 0; i < 2; i++) { await fp8.run([{ slot: sa[i + 1]!, tokens: pre[i]! }]); await f32.run([{ slot: sb[i + 1]!, tokens: pre[i]! }]); }
      for (let k = 0; k < 3; k++) {
        const toks = [ids[44 + k]!, ids[10 + k]!, ids[25 + k]!];
        const dx = await fp8.run(sa.map((slot, i) => ({ slot, tokens: [toks[i]!] })));
        for (let i = 0; i < 3; i++) expect(relErr(dx[i]!, (await f32.run([{ slot: sb[i]!, tokens: [toks[i]!] }]))[0]!), `batched decode, sequence ${i}`).toBeLessThan(1e-5);
      }
    } finally { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); }
  }, 300_000);
});
