// short_conv (kernels/conv/short_conv.wgsl + conv_store.wgsl) against short_conv.ref.ts: sequences of lengths
// 1, 2, 7 and 65 packed in one step on different slots with a random history (one slot untouched), kernel sizes
// 4 and 2, with and without SiLU. Compares the output and the whole history afterwards; a second step then
// continues from it (decode of one token per slot).
import { describe, test } from 'bun:test';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, packedStep } from './harness.ts';
import { shortConv, type ConvAct } from '../../../kernels/conv/short_conv.ts';

const SLOTS = 5;

async function runCase(C: number, W: number, act: ConvAct, seqs: { slot: number; len: number }[]): Promise<void> {
  const what = `short_conv C=${C} W=${W} ${act} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const x = randn(N * C, rng), w = randn(C * W, rng, 0.5), hist = randn(SLOTS * (W - 1) * C, rng);
  await checkBoth(step, { states: [{ key: 'conv', cols: (W - 1) * C }], slots: SLOTS, init: { conv: hist } }, async io => {
    const xt = io.o.act('x', C), y = io.o.act('y', C);
    io.put(xt, x);
    io.put(y);
    const st = io.o.state('conv');
    await shortConv(io.o, xt, io.weight('w', hostWeight(w, [C, 1, W]), false), st, y, act);
    return { y, state: st, x: xt };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('short_conv', () => {
  for (const W of [4, 2]) for (const act of ['silu', 'none'] as ConvAct[]) {
    test(`W=${W} ${act}: prefill of lengths 1, 2, 7, 65 packed`, async () => {
      await runCase(96, W, act, [{ slot: 2, len: 7 }, { slot: 0, len: 1 }, { slot: 4, len: 2 }, { slot: 3, len: 65 }]);
    });
  }
  test('W=4 silu: decode, one token in each of four slots', async () => {
    await runCase(160, 4, 'silu', [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }, { slot: 2, len: 1 }]);
  });
});
