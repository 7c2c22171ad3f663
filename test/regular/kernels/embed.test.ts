// embed and gather_rows (kernels/embed): table lookup by token id for bf16 / f16 / f32 tables, and
// the gather of kept rows (unordered, repeated, all rows) that feeds the head.
import { describe, test } from 'bun:test';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, type StepSpec } from './harness.ts';
import { embed } from '../../../kernels/embed/embed.ts';
import { gatherKept } from '../../../kernels/embed/embed.ts';

describe.skipIf(!HAS_GPU)('embed', () => {
  for (const dtype of ['bf16', 'f16', 'f32'] as const) {
    for (const C of [34, 64, 200]) {
      test(`${dtype} C=${C}`, async () => {
        const rng = prng(`embed ${dtype} ${C}`);
        const V = 50, N = 70;
        const ids = Array.from({ length: N }, () => rng.int(V));
        ids[0] = V - 1; ids[1] = 0; ids[2] = V - 1;
        const step: StepSpec = { ids, cursors: [{ slot: 0, start: 0, len: N }], keep: [N - 1] };
        const table = randn(V * C, rng);
        await checkBoth(step, {}, async io => {
          const x = io.o.act('x', C);
          io.put(x);
          await embed(io.o, io.weight('emb', hostWeight(table, [V, C], dtype)), x);
          return { x };
        }, { seed: rng, rtol: 0, what: `embed ${dtype} C=${C}` });   // a copy: exact
      });
    }
  }
});

describe.skipIf(!HAS_GPU)('gather_rows (gatherKept)', () => {
  const N = 70;
  const cases: [string, number[]][] = [
    ['one row', [N - 1]],
    ['unordered with repeats', [5, 0, 69, 5, 33, 1]],
    ['every row reversed', Array.from({ length: N }, (_, i) => N - 1 - i)],
  ];
  for (const C of [17, 64, 200]) {
    for (const [what, keep] of cases) {
      test(`C=${C}: ${what}`, async () => {
        const rng = prng(`gather ${C} ${what}`);
        const x = randn(N * C, rng);
        const step: StepSpec = { ids: Array.from({ length: N }, (_, i) => i), cursors: [{ slot: 0, start: 0, len: N }], keep };
        await checkBoth(step, {}, async io => {
          const xt = io.o.act('x', C), yt = io.o.act('y', C, { rows: 'k' });
          io.put(xt, x);
          io.put(yt);
          await gatherKept(io.o, xt, yt);
          return { y: yt };
        }, { seed: rng, rtol: 0, what: `gather C=${C} ${what}` });
      });
    }
  }
});
