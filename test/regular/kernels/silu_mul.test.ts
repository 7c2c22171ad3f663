// silu_mul (kernels/elementwise/silu_mul.wgsl): y = silu(a) ⊙ b, GPU against the CPU reference, over the step's
// rows and the kept rows, widths that do and do not fill the 64-thread workgroups, and large |a| (silu's tails).
import { describe, test } from 'bun:test';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, simpleStep } from './harness.ts';
import { siluMul } from '../../../kernels/elementwise/silu_mul.ts';

async function runCase(C: number, rows: 'n' | 'k', scale = 2): Promise<void> {
  const what = `silu_mul C=${C} rows=${rows} scale=${scale}`;
  const rng = prng(what);
  const step = rows === 'n' ? simpleStep(70) : simpleStep(9, [8, 0, 3, 3, 6]);
  const R = rows === 'n' ? 70 : 5;
  const a = randn(R * C, rng, scale), b = randn(R * C, rng, 1);
  await checkBoth(step, {}, async io => {
    const at = io.o.act('a', C, { rows }), bt = io.o.act('b', C, { rows }), yt = io.o.act('y', C, { rows });
    io.put(at, a);
    io.put(bt, b);
    io.put(yt);
    await siluMul(io.o, at, bt, yt);
    return { y: yt, a: at, b: bt };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('silu_mul', () => {
  for (const C of [1, 3, 64, 100, 1000]) test(`C=${C}, rows n and k`, async () => {
    await runCase(C, 'n');
    await runCase(C, 'k');
  });
  test('large |a| (σ = 15): the tails of silu', () => runCase(128, 'n', 15));
});
