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
import { plan } from '../../../kernels/matmul/matmul_gemv_vec.ts';
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

  test('plan: load width, lanes per row, register rows', () => {
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
