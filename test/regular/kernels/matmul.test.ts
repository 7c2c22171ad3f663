// matmul (kernels/matmul): each GPU kernel (gemv, gemm, blocked; forced with FLA_KERNEL_MATMUL)
// against the CPU reference: every activation, bias / no bias, accumulate, bf16 / f16 / f32 weights,
// row counts around the 4-row GEMV blocks and 64-row tiles, IN/OUT that are not multiples of the
// tiles, rows 'k', plane views as the model uses them; and the default kernel choice.
import { describe, expect, test } from 'bun:test';
import type { Act } from '../../../kernels/matmul/matmul.ref.ts';
import { ShapeError } from '../../../src/util/errors.ts';
import { matmulOp, type MatmulArgs, type MatmulKernel } from '../../../kernels/matmul/matmul.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { gpu, HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, runOn, selectCtx, simpleStep, type StepSpec } from './harness.ts';
import { matmul } from '../../../kernels/matmul/matmul.ts';

const ACTS: Act[] = ['none', 'tanh', 'sigmoid', 'relu2', 'rwkv_decay'];
const DTYPES = ['bf16', 'f16', 'f32'] as const;
type Dtype = (typeof DTYPES)[number];

interface Case {
  R: number; IN: number; OUT: number; act: Act; bias: boolean; accumulate: boolean; dtype: Dtype;
  rowsK?: boolean; kernel?: MatmulKernel;   // forced via FLA_KERNEL_MATMUL; absent: the default choice
}

const name = (c: Case) =>
  `R=${c.R} IN=${c.IN} OUT=${c.OUT} ${c.act}${c.bias ? ' +bias' : ''}${c.accumulate ? ' +=' : ''} ${c.dtype}${c.rowsK ? ' rows k' : ''}${c.kernel ? ` [${c.kernel}]` : ''}`;

/** Run one matmul case on both backends and compare y (rtol 1e-4). */
async function runCase(c: Case): Promise<void> {
  const rng = prng(`matmul ${name(c)}`);
  // rows 'k': R kept rows out of a longer step, picked in a scrambled order
  const step: StepSpec = c.rowsK
    ? simpleStep(c.R + 5, Array.from({ length: c.R }, (_, j) => (j * 7 + 3) % (c.R + 5)))
    : simpleStep(c.R);
  const x = randn(c.R * c.IN, rng);
  const w = randn(c.OUT * c.IN, rng, 1 / Math.sqrt(c.IN));   // pre-activations ~ N(0, 1)
  const b = randn(c.OUT, rng, 0.5);
  const y0 = randn(c.R * c.OUT, rng);
  const rows = c.rowsK ? 'k' as const : 'n' as const;
  const prev = process.env.FLA_KERNEL_MATMUL;
  if (c.kernel) process.env.FLA_KERNEL_MATMUL = c.kernel; else delete process.env.FLA_KERNEL_MATMUL;
  try {
    await checkBoth(step, {}, async io => {
      const xt = io.o.act('x', c.IN, { rows }), yt = io.o.act('y', c.OUT, { rows });
      io.put(xt, x);
      io.put(yt, c.accumulate ? y0 : undefined);
      const W = io.weight('w', hostWeight(w, [c.OUT, c.IN], c.dtype));
      const B = c.bias ? io.weight('b', hostWeight(b, [c.OUT]), false) : null;
      await matmul(io.o, xt, W, B, c.act, yt, c.accumulate);
      return { y: yt };
    }, { seed: rng, what: name(c) });
  } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL; else process.env.FLA_KERNEL_MATMUL = prev;
  }
}

const KERNELS: MatmulKernel[] = ['gemv', 'gemm', 'blocked'];
const ROWS = [1, 3, 8, 9, 63, 64, 65, 130];
const SHAPES: [number, number][] = [[34, 17], [130, 200], [64, 64], [128, 128], [64, 130]];   // [IN, OUT]
const FULL = process.env.FLA_TEST_FULL === '1';

// Each new pipeline variant costs lavapipe ~0.5-1 s of LLVM JIT at its first dispatch while Mesa's
// shader cache is cold (later runs load it from the disk cache), so the default cases reuse few
// variants per kernel: act 'none' with (bf16, plain), (f16, +bias), (f32, accumulate) over all shapes
// and row counts, then each other activation once with another (dtype, bias, accumulate), and rows 'k'
// once. FLA_TEST_FULL=1 runs every act × dtype × bias × accumulate; test/compile builds all of them.
const combo = (k: number) => ({ bias: (k & 1) === 1, accumulate: (k & 2) === 2 });
const ACT_CASES: { act: Act; dtype: Dtype; k: number }[] = FULL
  ? ACTS.flatMap(act => DTYPES.flatMap(dtype => [0, 1, 2, 3].map(k => ({ act, dtype, k }))))
  : [
    { act: 'none', dtype: 'bf16', k: 3 },
    { act: 'tanh', dtype: 'bf16', k: 3 },
    { act: 'sigmoid', dtype: 'f16', k: 2 },
    { act: 'relu2', dtype: 'f32', k: 1 },
    { act: 'rwkv_decay', dtype: 'bf16', k: 1 },
  ];
const label = (k: number) => `${k & 1 ? '+bias' : 'no bias'}${k & 2 ? ', accumulate' : ''}`;

describe.skipIf(!HAS_GPU)('matmul', () => {
  test('default choice: gemv_vec up to 16 rows (64 on GPUs), then gemm (blocked on CPU adapters)', () => {
    const big = gpu!.summary.type === 'cpu' ? 'blocked' : 'gemm';
    const prev = process.env.FLA_KERNEL_MATMUL;
    delete process.env.FLA_KERNEL_MATMUL;
    try {
      const o = gpuBackend(), a = { x: { rows: 'n' } } as MatmulArgs;
      expect(ROWS.map(r => o.variant(matmulOp, a, selectCtx(o.adapter, [r])))).toEqual(ROWS.map(r => (r <= 16 || (r <= 64 && big === 'gemm') ? 'gemv_vec' : big)));
    } finally {
      if (prev !== undefined) process.env.FLA_KERNEL_MATMUL = prev;
    }
  });

  test('default choice, rows 1..130 × shapes', async () => {
    for (const R of ROWS) await runCase({ R, IN: 130, OUT: 200, act: 'none', bias: true, accumulate: false, dtype: 'f16' });
  });

  for (const kernel of KERNELS) {
    describe(kernel, () => {
      // act 'none' with the three variants the activation tests below also use (no new compiles)
      for (const R of ROWS) {
        test(`R=${R}: IN×OUT ${SHAPES.map(s => s.join('×')).join(', ')}`, async () => {
          for (const [i, [IN, OUT]] of SHAPES.entries()) {
            const j = (i + R) % 3;
            await runCase({ R, IN, OUT, act: 'none', dtype: DTYPES[j]!, ...combo(j), kernel });
          }
        });
      }

      const R = kernel === 'gemv' ? 3 : 65;
      for (const { act, dtype, k } of ACT_CASES) {
        test(`R=${R} ${act} ${dtype} ${label(k)}`, async () => {
          await runCase({ R, IN: 130, OUT: 200, act, dtype, ...combo(k), kernel });
        });
      }

      test('rows k', async () => {
        for (const K of [1, 5, 70]) {
          await runCase({ R: K, IN: 130, OUT: 200, act: 'none', dtype: 'bf16', ...combo(0), rowsK: true, kernel });
          await runCase({ R: K, IN: 64, OUT: 17, act: 'none', dtype: 'bf16', ...combo(0), rowsK: true, kernel });
        }
      });

      test('wide IN (1030; GEMV uses 64 lanes per row from 1024)', async () => {
        for (const R of [2, 70]) await runCase({ R, IN: 1030, OUT: 40, act: 'none', dtype: 'bf16', ...combo(0), kernel });
      });

      // as the model records it: x a plane of the 6-plane mix, y a plane of the 6-plane proj; other planes unchanged
      test('plane views', async () => {
        for (const R of [4, 70]) {
          const rng = prng(`matmul planes ${kernel} ${R}`);
          const C = 64, OUT = 64;
          const mix = randn(6 * R * C, rng), proj = randn(6 * R * OUT, rng), w = randn(OUT * C, rng, 0.125), b = randn(OUT, rng);
          const prev = process.env.FLA_KERNEL_MATMUL;
          process.env.FLA_KERNEL_MATMUL = kernel;
          try {
            await checkBoth(simpleStep(R), {}, async io => {
              const m = io.o.act('mix', C, { planes: 6 }), p = io.o.act('proj', OUT, { planes: 6 });
              io.put(m, mix);
              io.put(p, proj);
              await matmul(io.o, io.o.plane(m, 2), io.weight('w', hostWeight(w, [OUT, C], 'f16')), io.weight('b', hostWeight(b, [OUT]), false), 'none', io.o.plane(p, 1));
              await matmul(io.o, io.o.plane(m, 5), io.weight('w2', hostWeight(w, [OUT, C], 'f32')), null, 'none', io.o.plane(p, 4), true);
              return { proj: p };
            }, { seed: rng, what: `matmul planes [${kernel}] R=${R}` });
          } finally {
            if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL; else process.env.FLA_KERNEL_MATMUL = prev;
          }
        }
      });
    });
  }

  test('odd IN is a ShapeError', async () => {
    const o = gpuBackend();
    await expect(runOn(o, 'gpu', simpleStep(2), {}, async io => {
      const x = io.o.act('x', 33), y = io.o.act('y', 8);
      await matmul(io.o, x, io.weight('w', hostWeight(new Float32Array(8 * 33), [8, 33])), null, 'none', y);
      return {};
    })).rejects.toThrow(ShapeError);
  });
});
