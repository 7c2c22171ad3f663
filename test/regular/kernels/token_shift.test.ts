// token_shift + shift_store (kernels/rwkv7): several sequences packed in one step, each on its own
// state slot, some resuming from a nonzero shift state, some of one token; M mix planes (6 for the
// time mix, 1 for the channel mix). Checks the mixed planes and the state left for the next step.
import { describe, test } from 'bun:test';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, packedStep } from './harness.ts';
import { tokenShift } from '../../../kernels/rwkv7/token_shift.ts';
import { shiftStore } from '../../../kernels/rwkv7/token_shift.ts';

const SLOTS = 6;

async function runCase(C: number, M: number, seqs: { slot: number; len: number }[], warm: number[], store = true): Promise<void> {
  const what = `token_shift C=${C} M=${M} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}${store ? '' : ' no store'}`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const h = randn(N * C, rng);
  const mix = randn(M * C, rng, 0.3, 0.5);
  const init = new Float32Array(SLOTS * C);
  for (const s of warm) init.set(randn(C, rng), s * C);   // slots resuming a sequence; the others start at 0
  await checkBoth(step, { states: [{ key: 'shift', cols: C }], slots: SLOTS, init: { shift: init } }, async io => {
    const ht = io.o.act('h', C), out = io.o.act('mix', C, { planes: M });
    io.put(ht, h);
    io.put(out);
    const st = io.o.state('shift');
    await tokenShift(io.o, ht, st, io.weight('mix', hostWeight(mix, [M, C]), false), out);
    if (store) await shiftStore(io.o, ht, st);
    return { out, state: st };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('token_shift + shift_store', () => {
  test('C=64 M=6: four sequences (lengths 5, 1, 9, 1), two resuming', async () => {
    await runCase(64, 6, [{ slot: 2, len: 5 }, { slot: 0, len: 1 }, { slot: 3, len: 9 }, { slot: 5, len: 1 }], [2, 5, 4]);
  });
  test('C=200 M=1: one token per sequence (decode), all resuming', async () => {
    await runCase(200, 1, [{ slot: 1, len: 1 }, { slot: 4, len: 1 }, { slot: 0, len: 1 }], [0, 1, 2, 3, 4, 5]);
  });
  test('C=130 M=2: a long sequence crossing 64 rows and a short one', async () => {
    await runCase(130, 2, [{ slot: 3, len: 70 }, { slot: 1, len: 3 }], [3]);
  });
  test('C=64 M=6: a sequence with no tokens leaves its slot alone', async () => {
    await runCase(64, 6, [{ slot: 1, len: 4 }, { slot: 2, len: 0 }, { slot: 4, len: 2 }], [1, 2]);
  });
  test('C=64 M=6: token_shift alone does not touch the state', async () => {
    await runCase(64, 6, [{ slot: 0, len: 3 }, { slot: 5, len: 2 }], [0, 5], false);
  });
});
