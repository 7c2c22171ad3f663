// matmul_gemv_vec (kernels/matmul): the decode GEMV family against the CPU reference, with the subgroup
// reduction ('gemv_vec') and the portable workgroup-memory one ('gemv_vec_wg'), forced with FLA_KERNEL_MATMUL:
// rows 1..16 (every register block RB 1/2/4/8/16, rows not a multiple of RB), IN a multiple of 8 (16-byte loads)
// and not (word loads), OUT not a multiple of the rows per workgroup, lanes per row from 1 to 256 (split-K),
// bf16 / f16 / f32 weights, every activation, bias, accumulate, rows 'k', plane views; register tiles of 1, 2 and 4
// output columns (FLA_GEMV_COLS) with the transposing reduction inside one subgroup and across subgroups. plan() is
// checked so that each case really exercises the geometry it names.
import { describe, expect, test } from 'bun:test';
import type { Act } from '../../../kernels/matmul/matmul.ref.ts';
import { matmul, matmulOp, type MatmulArgs } from '../../../kernels/matmul/matmul.ts';
import { gemvRule, plan } from '../../../kernels/matmul/matmul_gemv_vec.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { gpu, HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, selectCtx, simpleStep, type StepSpec } from './harness.ts';

type Dtype = 'bf16' | 'f16' | 'f32';
type Kernel = 'gemv_vec' | 'gemv_vec_wg';

interface Case { R: number; IN: number; OUT: number; act: Act; bias: boolean; accumulate: boolean; dtype: Dtype; rowsK?: boolean; kernel: Kernel }

const name = (c: Case) =>
  `R=${c.R} IN=${c.IN} OUT=${c.OUT} ${c.act}${c.bias ? ' +bias' : ''}${c.accumulate ? ' +=' : ''} ${c.dtype}${c.rowsK ? ' rows k' : ''} [${c.kernel}]`;

async function withKernel<T>(kernel: string | undefined, fn: () => Promise<T>): Promise<T> {
  const prev = process.env.FLA_KERNEL_MATMUL;
  if (kernel) process.env.FLA_KERNEL_MATMUL = kernel; else delete process.env.FLA_KERNEL_MATMUL;
  try { return await fn(); } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL; else process.env.FLA_KERNEL_MATMUL = prev;
  }
}

/** fn with the knobs set (restored after, also when fn throws) */
function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const prev = Object.fromEntries(Object.keys(env).map(k => [k, process.env[k]]));
  Object.assign(process.env, env);
  const restore = () => { for (const [k, v] of Object.entries(prev)) if (v === undefined) delete process.env[k]; else process.env[k] = v; };
  try {
    const r = fn();
    if (r instanceof Promise) return r.finally(restore) as T;
    restore();
    return r;
  } catch (e) { restore(); throw e; }
}

async function runCase(c: Case): Promise<void> {
  const rng = prng(`matmul_gemv_vec ${name(c)}`);
  const step: StepSpec = c.rowsK
    ? simpleStep(c.R + 5, Array.from({ length: c.R }, (_, j) => (j * 7 + 3) % (c.R + 5)))
    : simpleStep(c.R);
  const x = randn(c.R * c.IN, rng);
  const w = randn(c.OUT * c.IN, rng, 1 / Math.sqrt(c.IN));
  const b = randn(c.OUT, rng, 0.5);
  const y0 = randn(c.R * c.OUT, rng);
  const rows = c.rowsK ? 'k' as const : 'n' as const;
  await withKernel(c.kernel, () => checkBoth(step, {}, async io => {
    const xt = io.o.act('x', c.IN, { rows }), yt = io.o.act('y', c.OUT, { rows });
    io.put(xt, x);
    io.put(yt, c.accumulate ? y0 : undefined);
    const W = io.weight('w', hostWeight(w, [c.OUT, c.IN], c.dtype));
    const B = c.bias ? io.weight('b', hostWeight(b, [c.OUT]), false) : null;
    await matmul(io.o, xt, W, B, c.act, yt, c.accumulate);
    return { y: yt };
  }, { seed: rng, what: name(c) }));
}

const KERNELS: Kernel[] = ['gemv_vec', 'gemv_vec_wg'];
const SLOW = 600_000;   // ms: cold shader JIT on lavapipe
// [IN, OUT]: 16-byte loads (IN % 8 == 0) with 1, 4, 32 and 256 lanes per row; word loads (IN % 8 != 0)
const SHAPES: [number, number][] = [[8, 37], [40, 200], [264, 130], [16384, 3], [34, 17], [130, 200], [1030, 41]];

describe.skipIf(!HAS_GPU)('matmul_gemv_vec', () => {
  test('default choice: gemv_vec up to 16 rows', () =>
    withKernel(undefined, async () => {
      const big = gpu!.summary.type === 'cpu' ? 'blocked' : 'gemm';
      const o = gpuBackend(), a = { x: { rows: 'n' } } as MatmulArgs;
      expect([1, 8, 16, 17, 64, 65].map(r => o.variant(matmulOp, a, selectCtx(o.adapter, [r]))))
        .toEqual(['gemv_vec', 'gemv_vec', 'gemv_vec', ...(big === 'gemm' ? ['gemv_vec', 'gemv_vec', 'gemm'] : [big, big, big])]);
    }));

  // the geometry before the per-shape rules (FLA_GEMV_TUNED=0; also the portable path's and the other row counts')
  test('plan: load width, lanes per row, register rows', () => withEnv({ FLA_GEMV_TUNED: '0' }, () => {
    const ad = gpuBackend().adapter;
    const p = (R: number, IN: number, OUT: number, dtype: Dtype = 'bf16') => plan(ad, R, IN, OUT, dtype, true);
    expect([p(1, 8, 37).TPR, p(1, 40, 200).TPR, p(1, 264, 130).TPR, p(1, 16384, 3).TPR]).toEqual([1, 4, 32, 256]);
    expect(SHAPES.map(([IN, OUT]) => p(1, IN, OUT).VEC)).toEqual([true, true, true, true, false, false, false]);
    expect(p(1, 36, 8, 'f32').VEC).toBe(true);
    expect(p(1, 36, 8, 'bf16').VEC).toBe(false);
    expect([1, 2, 3, 4, 5, 8, 9, 16].map(R => p(R, 64, 8).RB)).toEqual([1, 2, 4, 4, 8, 8, 16, 16]);
    expect(p(16, 64, 8).workgroups[2]).toBe(1);
    // register tile: 1 column at one row, 2 at two, 4 from three; the transposing reduction steps fit the group
    expect([1, 2, 3, 8, 16, 64].map(R => p(R, 2048, 2048).CB)).toEqual([1, 2, 4, 4, 4, 4]);
    expect([1, 2, 8].map(R => p(R, 2048, 2048).TS)).toEqual(ad.subgroups ? [0, Math.min(2, Math.log2(ad.subgroupSize)), Math.min(3, Math.log2(ad.subgroupSize))] : [0, 0, 0]);
    expect(p(3, 40, 200).TPR).toBe(4);
    // gate|up pairs at one row: 16 lanes a group on a wide grid (llama-1b's 8192 pairs), widened on a small one
    expect([plan(ad, 1, 2048, 16384, 'bf16', true, true).TPR, plan(ad, 1, 2048, 256, 'bf16', true, true).TPR, plan(ad, 2, 2048, 16384, 'bf16', true, true).TPR])
      .toEqual([Math.min(16, ad.maxInvocations), Math.min(128, ad.maxInvocations), Math.min(32, ad.maxInvocations)]);
    if (ad.subgroups) expect(p(3, 40, 200).TS).toBe(Math.min(2, Math.log2(ad.subgroupSize)));
    expect(plan(ad, 8, 2048, 2048, 'bf16', false).TS).toBe(0);
    expect(p(64, 2048, 2048).workgroups[2]).toBe(4);
    const prev = process.env.FLA_GEMV_COLS;
    process.env.FLA_GEMV_COLS = '2';
    try { expect(p(8, 2048, 2048).CB).toBe(2); } finally { if (prev === undefined) delete process.env.FLA_GEMV_COLS; else process.env.FLA_GEMV_COLS = prev; }
    const knobs = { FLA_GEMV_LANES: process.env.FLA_GEMV_LANES, FLA_GEMV_ROWS: process.env.FLA_GEMV_ROWS };
    process.env.FLA_GEMV_LANES = '128';
    process.env.FLA_GEMV_ROWS = '8';
    try {
      expect([p(1, 2048, 2048).TPR, p(1, 40, 200).TPR]).toEqual([128, 4]);   // forced, then narrowed to a short row's units
      expect([p(16, 2048, 2048).RB, p(64, 2048, 2048).workgroups[2]]).toEqual([8, 8]);
    } finally {
      for (const [k, v] of Object.entries(knobs)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
    expect(plan(ad, 16, 64, 8, 'bf16', false).SG_RED).toBe(false);
    if (ad.subgroups) expect(p(1, 64, 8).SG_RED).toBe(true);
  }));

  test('plan: the measured rules (gemvRule) at 1 and 8 rows where subgroups reduce; knobs override them', () => {
    // the rules are a GPU's: this adapter's limits as a discrete GPU's (on a CPU adapter only UNROLL differs, below)
    const ad = { ...gpuBackend().adapter, type: 'discrete' };
    const g = (R: number, IN: number, OUT: number, pairs = false, sg = true) => { const q = plan(ad, R, IN, OUT, 'bf16', sg, pairs); return [q.WG, q.CB, q.TPR, q.UNROLL]; };
    // the decode shapes of the sweep: heads 16 lanes, 2048-wide outputs 128; 8 rows: 128 threads up to 16 K outputs
    expect([gemvRule(1, 256, 128256, false), gemvRule(1, 256, 2048, false), gemvRule(1, 1024, 2048, false), gemvRule(1, 256, 16384, true)])
      .toEqual([{ CB: 2, TPR: 16, UNROLL: 8 }, { CB: 2, TPR: 128, UNROLL: 8 }, { CB: 2, TPR: 128, UNROLL: 8 }, { CB: 4, TPR: 32, UNROLL: 2 }]);
    expect([gemvRule(8, 256, 128256, false), gemvRule(8, 256, 2048, false), gemvRule(8, 1024, 2048, false), gemvRule(8, 256, 11264, true)])
      .toEqual([{ CB: 4, TPR: 8, UNROLL: 2 }, { CB: 4, TPR: 64, UNROLL: 2, WG: 128 }, { CB: 4, TPR: 128, UNROLL: 2, WG: 128 }, { CB: 4, TPR: 16, UNROLL: 2, WG: 128 }]);
    expect(gemvRule(8, 256, 16384, true)).toEqual({});   // llama-1b's gate|up at 8 rows: the previous geometry
    if (!ad.subgroups || ad.subgroupSize > 128 || ad.maxInvocations < 256) return;
    expect(g(1, 2048, 128256)).toEqual([256, 2, 16, 8]);
    expect(g(8, 2048, 2048)).toEqual([Math.max(128, ad.subgroupSize), 4, 64, 2]);
    expect(g(5, 2048, 2048)).toEqual(g(8, 2048, 2048));
    // not ruled: 2 to 4 rows, two blocks, word loads, the portable path
    expect([g(3, 2048, 2048), g(9, 2048, 2048), g(1, 2050, 2048), g(1, 2048, 2048, false, false)].map(v => v[1])).toEqual([4, 4, 1, 1]);
    withEnv({ FLA_GEMV_WG: '512', FLA_GEMV_COLS: '1', FLA_GEMV_LANES: '64', FLA_GEMV_UNROLL: '4' }, () => expect(g(1, 2048, 128256)).toEqual([Math.min(512, ad.maxInvocations), 1, 64, 4]));
    withEnv({ FLA_GEMV_TUNED: '0' }, () => expect(g(1, 2048, 128256)).toEqual([256, 1, 32, 4]));
    // where a CPU runs the shaders: one unit in flight (unrollFor), the rest of the geometry as on a GPU; the knob still forces
    const cpu = { ...ad, type: 'cpu' };
    expect([1, 3, 8].map(R => plan(cpu, R, 2048, 128256, 'bf16', true).UNROLL)).toEqual([1, 1, 1]);
    expect(plan(cpu, 1, 2048, 128256, 'bf16', true).CB).toBe(2);
    withEnv({ FLA_GEMV_UNROLL: '8' }, () => expect(plan(cpu, 1, 2048, 128256, 'bf16', true).UNROLL).toBe(8));
  });

  // Lavapipe JIT-compiles each new variant at its first dispatch (RB 16: ~30 s on a loaded machine; Mesa's disk
  // cache keeps it afterwards), so the cases reuse few defines: every register block RB with one epilogue, and
  // the dtypes, activations and epilogues at RB 1. Lanes per row (TPR) are a runtime value: no new variants.
  for (const kernel of KERNELS) {
    describe(kernel, () => {
      test('rows 1..16 (RB 1, 2, 4, 8, 16), 264×130', async () => {
        for (let R = 1; R <= 16; R++) await runCase({ R, IN: 264, OUT: 130, act: 'none', bias: false, accumulate: false, dtype: 'bf16', kernel });
      }, SLOW);

      // the default tile (4 columns from 3 rows) runs in every case above; each new tile is a lavapipe JIT of ~30 s
      const cols = kernel === 'gemv_vec' ? ['1', '2'] : ['2'];
      test(`column tiles ${cols.join(', ')} (FLA_GEMV_COLS) at 7 and 33 rows, 264×130 and 40×200 (4 lanes a group)`, async () => {
        const prev = process.env.FLA_GEMV_COLS;
        try {
          for (const c of cols) {
            process.env.FLA_GEMV_COLS = c;
            for (const R of [7, 33]) await runCase({ R, IN: 264, OUT: 130, act: 'none', bias: false, accumulate: false, dtype: 'bf16', kernel });
            await runCase({ R: 9, IN: 40, OUT: 200, act: 'none', bias: true, accumulate: true, dtype: 'bf16', kernel });
          }
        } finally { if (prev === undefined) delete process.env.FLA_GEMV_COLS; else process.env.FLA_GEMV_COLS = prev; }
      }, SLOW);

      test('rows as a loop (FLA_GEMV_ROW_LOOP=1) at 8 rows', async () => {
        const prev = process.env.FLA_GEMV_ROW_LOOP;
        process.env.FLA_GEMV_ROW_LOOP = '1';
        try { await runCase({ R: 8, IN: 264, OUT: 130, act: 'none', bias: false, accumulate: false, dtype: 'bf16', kernel }); } finally { if (prev === undefined) delete process.env.FLA_GEMV_ROW_LOOP; else process.env.FLA_GEMV_ROW_LOOP = prev; }
      }, SLOW);

      test('units in flight (FLA_GEMV_UNROLL) 8 and 1 at 1 and 5 rows, 1030×41 (word loads) and 264×130 (4 lanes a group: the unrolled loop and its remainder)', async () => {
        const prev = process.env.FLA_GEMV_UNROLL;
        try {
          for (const un of ['8', '1']) {
            process.env.FLA_GEMV_UNROLL = un;
            for (const R of [1, 5]) for (const [IN, OUT] of [[1030, 41], [264, 130]] as const) await runCase({ R, IN, OUT, act: 'none', bias: true, accumulate: false, dtype: 'bf16', kernel });
          }
        } finally { if (prev === undefined) delete process.env.FLA_GEMV_UNROLL; else process.env.FLA_GEMV_UNROLL = prev; }
      }, SLOW);

      // the rules' geometry runs in the cases above (1 row: 2 columns, 8 units in flight; 5..8 rows: 4 columns, 2 in
      // flight, 128 threads); here a grid wide enough that 1-row lanes stay at 16 and run the 8-unit loop and its
      // remainder (129 units), 8195 outputs (an odd last column pair, a partial last workgroup), then 8 rows on it;
      // and the previous geometry (FLA_GEMV_TUNED=0) at 1 and 8 rows
      test('tuned geometry on a wide grid: 1 and 6 rows of 1032×8195; the previous geometry at 1 and 8 rows', async () => {
        // (epilogues as cases above use at these geometries: no new shader to JIT)
        await runCase({ R: 1, IN: 1032, OUT: 8195, act: 'none', bias: true, accumulate: true, dtype: 'bf16', kernel });
        await runCase({ R: 6, IN: 1032, OUT: 8195, act: 'none', bias: false, accumulate: false, dtype: 'bf16', kernel });
        // gemv_vec_wg never takes the rules
        if (kernel === 'gemv_vec') await withEnv({ FLA_GEMV_TUNED: '0' }, async () => { for (const R of [1, 8]) await runCase({ R, IN: 264, OUT: 130, act: 'none', bias: false, accumulate: false, dtype: 'bf16', kernel }); });
      }, SLOW);

      test('rows past 16 (row groups of 16 side by side, the batched-decode default on GPUs up to 64 rows)', async () => {
        for (const R of [17, 33, 64]) await runCase({ R, IN: 264, OUT: 130, act: 'none', bias: false, accumulate: false, dtype: 'bf16', kernel });   // the RB 16 shader of the case above: no new compile
      }, SLOW);

      test(`every shape at 1 and 3 rows: ${SHAPES.map(s => s.join('×')).join(', ')}`, async () => {
        for (const [IN, OUT] of SHAPES) for (const R of [1, 3]) await runCase({ R, IN, OUT, act: 'none', bias: false, accumulate: false, dtype: 'bf16', kernel });
      }, SLOW);

      test('every dtype on both load widths, bias and accumulate', async () => {
        for (const dtype of ['bf16', 'f16', 'f32'] as const) for (const IN of [264, 130]) await runCase({ R: 1, IN, OUT: 70, act: 'none', bias: true, accumulate: true, dtype, kernel });
      }, SLOW);

      test('activations', async () => {
        for (const act of ['tanh', 'sigmoid', 'relu2', 'rwkv_decay'] as Act[]) await runCase({ R: 1, IN: 264, OUT: 130, act, bias: true, accumulate: false, dtype: 'bf16', kernel });
      }, SLOW);

      test('rows k', async () => {
        for (const K of [1, 5]) await runCase({ R: K, IN: 264, OUT: 130, act: 'none', bias: false, accumulate: false, dtype: 'bf16', rowsK: true, kernel });
      }, SLOW);

      test('plane views', async () => {
        const R = 4, C = 64, OUT = 72;
        const rng = prng(`matmul_gemv_vec planes ${kernel}`);
        const mix = randn(6 * R * C, rng), proj = randn(6 * R * OUT, rng), w = randn(OUT * C, rng, 0.125), b = randn(OUT, rng);
        await withKernel(kernel, () => checkBoth(simpleStep(R), {}, async io => {
          const m = io.o.act('mix', C, { planes: 6 }), p = io.o.act('proj', OUT, { planes: 6 });
          io.put(m, mix);
          io.put(p, proj);
          await matmul(io.o, io.o.plane(m, 2), io.weight('w', hostWeight(w, [OUT, C], 'f16')), io.weight('b', hostWeight(b, [OUT]), false), 'none', io.o.plane(p, 1));
          await matmul(io.o, io.o.plane(m, 5), io.weight('w2', hostWeight(w, [OUT, C], 'bf16')), null, 'none', io.o.plane(p, 4), true);
          return { proj: p };
        }, { seed: rng, what: `matmul_gemv_vec planes [${kernel}]` }));
      }, SLOW);
    });
  }
});
