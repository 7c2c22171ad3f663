// rms_norm (kernels/norm/rms_norm.wgsl): GPU against the CPU reference over all five defines — workgroup size
// (widths below, at and above 64 / 128 / 256), weight or none, zero-centred weight (PLUS_ONE), SiLU gate, and the
// step's rows ('n', 70 tokens: more than one 64-row block) or the kept rows ('k') — with per-head norms (G heads
// of head dim 64 and 128) as Qwen3 and the delta families use them, and a gate that is a part of a wider packed
// projection row (gateOff, the delta mixers' unfused output norm).
import { describe, test } from 'bun:test';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, simpleStep } from './harness.ts';
import { rmsNorm } from '../../../kernels/norm/rms_norm.ts';

interface Case { cols: number; headDim?: number; weight: boolean; plusOne: boolean; gate: boolean; rows: 'n' | 'k'; eps?: number; gateOff?: number; gateCols?: number }

async function runCase(c: Case): Promise<void> {
  const what = `rms_norm cols=${c.cols} head=${c.headDim ?? c.cols} w=${c.weight} plusOne=${c.plusOne} gate=${c.gate}${c.gateOff !== undefined ? ` at ${c.gateOff}/${c.gateCols}` : ''} rows=${c.rows}`;
  const rng = prng(what);
  const step = c.rows === 'n' ? simpleStep(70) : simpleStep(9, [8, 0, 3, 3, 6]);
  const R = c.rows === 'n' ? 70 : 5, C = c.headDim ?? c.cols;
  const x = randn(R * c.cols, rng, 2);
  for (let r = 0; r < R; r++) {   // per-row scales, so the norm matters
    const sc = 0.05 + 3 * rng.next();
    for (let i = 0; i < c.cols; i++) x[r * c.cols + i]! *= sc;
  }
  const GC = c.gateCols ?? c.cols;
  const w = randn(C, rng, 0.3, c.plusOne ? 0 : 1), g = randn(R * GC, rng, 2);
  await checkBoth(step, {}, async io => {
    const xt = io.o.act('x', c.cols, { rows: c.rows }), yt = io.o.act('y', c.cols, { rows: c.rows }), gt = io.o.act('g', GC, { rows: c.rows });
    io.put(xt, x);
    io.put(gt, g);
    io.put(yt);
    await rmsNorm(io.o, xt, c.weight ? io.weight('w', hostWeight(w, [C]), false) : null, yt,
      { eps: c.eps ?? 1e-6, headDim: c.headDim, plusOne: c.plusOne, gate: c.gate ? gt : null, gateOff: c.gateOff });
    return { y: yt, x: xt, g: gt };   // x and g must be left as they were
  }, { seed: rng, what });
}

const B = [false, true];

describe.skipIf(!HAS_GPU)('rms_norm', () => {
  for (const cols of [48, 64, 128, 200, 256, 520]) {
    test(`C=${cols}: weight × plus one × gate, rows n and k`, async () => {
      for (const weight of B) for (const plusOne of weight ? B : [false]) for (const gate of B) for (const rows of ['n', 'k'] as const)
        await runCase({ cols, weight, plusOne, gate, rows });
    });
  }
  for (const headDim of [64, 128]) {
    test(`per-head: 4 heads of ${headDim}, zero-centred weight, gated (Qwen3-Next), rows n and k`, async () => {
      for (const rows of ['n', 'k'] as const) await runCase({ cols: 4 * headDim, headDim, weight: true, plusOne: true, gate: true, rows });
      await runCase({ cols: 4 * headDim, headDim, weight: true, plusOne: false, gate: false, rows: 'n' });
    });
  }
  test('gate columns inside a wider packed row (gateOff), per-head and whole-row, rows n and k', async () => {
    for (const rows of ['n', 'k'] as const) {
      await runCase({ cols: 4 * 64, headDim: 64, weight: true, plusOne: false, gate: true, rows, gateOff: 37, gateCols: 4 * 64 + 50 });
      await runCase({ cols: 200, weight: true, plusOne: false, gate: true, rows, gateOff: 3, gateCols: 203 });
    }
  });
  test('large eps, tiny rows', async () => {
    await runCase({ cols: 128, weight: true, plusOne: false, gate: false, rows: 'n', eps: 0.5 });
  });
});
