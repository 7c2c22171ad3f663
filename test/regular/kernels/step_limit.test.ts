// The step budget is measured by the backend, not declared by models: stepLimit runs one dry forward (nothing is
// recorded or computed) and bounds the tokens per step by the widest per-token tensor it asked for — activations and
// the scratch of every variant of every op (the chunked delta rule's A/B/T rows although a one-token step runs recurrent).
import { describe, expect, test } from 'bun:test';
import { deltaRuleOp } from '../../../kernels/delta/delta_rule.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { gpuBackend } from './harness.ts';

const aligned = (rows: number) => Math.max(1, Math.floor(Math.min(rows, 8192) / 64) * 64 || 1);

describe.skipIf(!HAS_GPU)('step limit (GPU)', () => {
  test('bounded by the widest activation, nothing recorded', async () => {
    const o = gpuBackend();
    o.allocState([], 1);
    const cols = 1 << 16;
    const limit = await o.stepLimit(async () => { o.act('narrow', 64); o.act('wide', cols, { planes: 2 }); o.act('logits', 1000, { rows: 'k' }); });
    expect(o.measuredRowBytes).toBe(4 * 2 * cols);
    expect(limit).toBe(aligned(Math.floor(o.gpu.maxBinding / (8 * cols))));
    expect(() => o.recording()).not.toThrow();
    expect(o.recording().items).toEqual([]);
  });

  test("an op's scratch of every variant counts (delta_rule chunk scratch on a one-token step)", async () => {
    const o = gpuBackend();
    const d = { H: 2, HV: 512, DK: 16, DV: 16, qkAct: 'none', qkNorm: 'l2', vSilu: false, negEig: false } as const;
    o.allocState([{ key: 'S', cols: d.HV * d.DK * d.DV }], 1);
    const limit = await o.stepLimit(async () => {
      await o.run(deltaRuleOp, {
        q: o.act('q', d.H * d.DK), k: o.act('k', d.H * d.DK), v: o.act('v', d.HV * d.DV), a: null, gp: null, b: null,
        state: o.state('S'), out: o.act('o', d.HV * d.DV), d,
      });
    });
    const ab = 4 * 3 * d.HV * 64;   // A/B/T rows: 3 planes × HV·CHUNK
    expect(o.measuredRowBytes).toBe(ab);
    expect(limit).toBe(aligned(Math.floor(o.gpu.maxBinding / ab)));
    // and a real step afterwards records as usual
    o.beginStep({ ids: Int32Array.of(1, 2), cursors: [{ slot: 0, start: 0, len: 2, pos: 0 }], keep: Int32Array.of(1) });
    await o.run(deltaRuleOp, { q: o.act('q', d.H * d.DK), k: o.act('k', d.H * d.DK), v: o.act('v', d.HV * d.DV), a: null, gp: null, b: null, state: o.state('S'), out: o.act('o', d.HV * d.DV), d });
    expect(o.recording().items.length).toBe(1);
  });
});

test('the CPU backend has no binding limit and runs nothing', async () => {
  let ran = false;
  expect(await new CpuBackend().stepLimit(async () => { ran = true; })).toBe(1 << 16);
  expect(ran).toBe(false);
});
