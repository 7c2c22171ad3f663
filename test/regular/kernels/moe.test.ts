// moe_route (kernels/moe) and mul (kernels/elementwise/mul): GPU against the CPU references. The router at
// 4, 64 and 512 experts, top-k with and without renormalisation, including rows of exactly tied logits (the lower
// expert index wins); mul elementwise and as a per-row scale by one column, written and accumulated, on n and k rows.
import { describe, expect, test } from 'bun:test';
import { mul } from '../../../kernels/elementwise/mul.ts';
import { moeRoute } from '../../../kernels/moe/moe_route.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, simpleStep } from './harness.ts';

async function routeCase(N: number, E: number, K: number, norm: boolean): Promise<void> {
  const what = `moe_route N=${N} E=${E} K=${K} norm=${norm}`;
  const rng = prng(what);
  const logits = randn(N * E, rng, 3);
  logits.fill(0.5, 0, E);                                   // row 0: every expert tied
  for (let e = 0; e < E; e++) if (e % 3 === 0) logits[E + e] = 1.25;   // row 1: ties at the top
  const want = await checkBoth(simpleStep(N), {}, async io => {
    const lt = io.o.act('logits', E), w = io.o.act('w', E);
    io.put(lt, logits); io.put(w);
    await moeRoute(io.o, lt, w, K, norm);
    return { w };
  }, { seed: rng, what });
  const w = want.w!.data;
  for (let r = 0; r < N; r++) {
    const row = w.subarray(r * E, (r + 1) * E);
    expect(row.filter(v => v !== 0).length, `row ${r}`).toBe(K);
    if (norm) expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-6);
  }
  for (let e = 0; e < K; e++) expect(w[e]! > 0, `tied row picks expert ${e}`).toBe(true);
}

describe.skipIf(!HAS_GPU)('moe_route', () => {
  test('E=4 top-2 renormalised, 70 rows', () => routeCase(70, 4, 2, true));
  test('E=64 top-8 not renormalised, 9 rows', () => routeCase(9, 64, 8, false));
  test('E=512 top-10 renormalised, 3 rows', () => routeCase(3, 512, 10, true));
});

describe.skipIf(!HAS_GPU)('mul', () => {
  for (const [N, rowsK] of [[1, false], [70, false], [70, true]] as const) for (const accumulate of [false, true]) {
    test(`N=${N}${rowsK ? ' (kept rows)' : ''} accumulate=${accumulate}: elementwise and per-row column scale`, async () => {
      const what = `mul N=${N} rowsK=${rowsK} acc=${accumulate}`;
      const rng = prng(what);
      const step = simpleStep(N, rowsK ? [0, N - 1] : [N - 1]);
      const R = rowsK ? 2 : N, C = 96, S = 5;
      const a = randn(R * C, rng), s = randn(R * C, rng), s5 = randn(R * S, rng), y0 = randn(R * C, rng), y1 = randn(R * C, rng);
      const rows = rowsK ? 'k' : 'n';
      await checkBoth(step, {}, async io => {
        const at = io.o.act('a', C, { rows }), st = io.o.act('s', C, { rows }), s5t = io.o.act('s5', S, { rows });
        const ya = io.o.act('ya', C, { rows }), yb = io.o.act('yb', C, { rows });
        io.put(at, a); io.put(st, s); io.put(s5t, s5);
        io.put(ya, accumulate ? y0 : undefined); io.put(yb, accumulate ? y1 : undefined);
        await mul(io.o, at, st, ya, { accumulate });
        await mul(io.o, at, s5t, yb, { col: 3, accumulate });
        return { ya, yb };
      }, { seed: rng, what });
    });
  }
});
