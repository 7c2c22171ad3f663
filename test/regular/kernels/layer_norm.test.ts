// layer_norm (kernels/norm): GPU against the CPU reference for widths below, at and above the
// workgroup size, with and without bias, over the step's rows ('n') and the kept rows ('k').
import { describe, test } from 'bun:test';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, simpleStep } from './harness.ts';
import { layerNorm } from '../../../kernels/norm/layer_norm.ts';

async function runCase(C: number, bias: boolean, rows: 'n' | 'k', eps = 1e-5): Promise<void> {
  const rng = prng(`layer_norm C=${C} bias=${bias} rows=${rows}`);
  // rows 'n': 70 tokens (more than one 64-row block); rows 'k': 5 kept rows of a 9-token step
  const step = rows === 'n' ? simpleStep(70) : simpleStep(9, [8, 0, 3, 3, 6]);
  const R = rows === 'n' ? 70 : 5;
  const x = randn(R * C, rng, 2);
  for (let r = 0; r < R; r++) {   // per-row offsets and scales, so mean and variance both matter
    const off = 3 * rng.normal(), sc = 0.1 + 2 * rng.next();
    for (let c = 0; c < C; c++) x[r * C + c] = off + sc * x[r * C + c]!;
  }
  const w = randn(C, rng, 0.3, 1), b = randn(C, rng, 0.5);
  await checkBoth(step, {}, async io => {
    const xt = io.o.act('x', C, { rows }), yt = io.o.act('y', C, { rows });
    io.put(xt, x);
    io.put(yt);
    await layerNorm(io.o, xt, io.weight('w', hostWeight(w, [C]), false), bias ? io.weight('b', hostWeight(b, [C]), false) : null, eps, yt);
    return { y: yt, x: xt };   // x must be left as it was
  }, { seed: rng, what: `layer_norm C=${C}${bias ? ' +bias' : ''} rows ${rows}` });
}

describe.skipIf(!HAS_GPU)('layer_norm', () => {
  for (const C of [64, 128, 200, 520]) {
    for (const bias of [true, false]) {
      test(`C=${C}${bias ? ' +bias' : ''}, rows n and k`, async () => {
        await runCase(C, bias, 'n');
        await runCase(C, bias, 'k');
      });
    }
  }
  test('large eps, near-constant rows', async () => {
    await runCase(128, true, 'n', 0.5);
  });
});
