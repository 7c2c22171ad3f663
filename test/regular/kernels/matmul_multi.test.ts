// matmul_multi (kernels/matmul/matmul_gemv_multi): sibling projections in one GEMV with the RMSNorm in its
// prologue ('fused') against the CPU reference, which is the unfused path (rms_norm, then one matmul per part);
// 'split' (that path on the GPU) too. Parts 1..3 of different widths (part boundaries inside a workgroup's rows),
// with and without the norm, bf16 / f16 / f32, 16-byte and word loads, rows 1..16, accumulate, rows 'k', parts reading
// planes of one input with their own activations (RWKV7's r|k|v and LoRA down-projections), and gate|up with the
// SwiGLU product silu(gate)·up in the epilogue; rows 1..64 (register tiles of 1..16 rows × 1..4 columns, blocks of 16
// rows past 16); 'fused_wg' (the same without subgroup operations).
import { describe, expect, test } from 'bun:test';
import { matmulOp, type MatmulArgs } from '../../../kernels/matmul/matmul.ts';
import { matmulMulti, matmulMultiOp, type MatmulMultiArgs } from '../../../kernels/matmul/matmul_gemv_multi.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { gpu, HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, selectCtx, simpleStep, type StepSpec } from './harness.ts';

type Dtype = 'bf16' | 'f16' | 'f32';
type Variant = 'fused' | 'fused_wg' | 'split';
interface Case { R: number; IN: number; OUTS: number[]; norm: boolean; dtype: Dtype; accumulate?: boolean; rowsK?: boolean; variant: Variant }
const name = (c: Case) => `R=${c.R} IN=${c.IN} OUT=${c.OUTS.join('|')}${c.norm ? ' +norm' : ''} ${c.dtype}${c.accumulate ? ' +=' : ''}${c.rowsK ? ' rows k' : ''} [${c.variant}]`;

async function runCase(c: Case): Promise<void> {
  const rng = prng(`matmul_multi ${name(c)}`);
  const step: StepSpec = c.rowsK ? simpleStep(c.R + 3, Array.from({ length: c.R }, (_, j) => (j * 5 + 2) % (c.R + 3))) : simpleStep(c.R);
  const rows = c.rowsK ? 'k' as const : 'n' as const;
  const x = randn(c.R * c.IN, rng, 2, 0.3);
  const g = randn(c.IN, rng, 0.3, 1);
  const ws = c.OUTS.map(o => randn(o * c.IN, rng, 1 / Math.sqrt(c.IN)));
  const y0 = c.OUTS.map(o => randn(c.R * o, rng));
  const prev = process.env.FLA_KERNEL_MATMUL_MULTI;
  process.env.FLA_KERNEL_MATMUL_MULTI = c.variant;
  try {
    await checkBoth(step, {}, async io => {
      const xt = io.o.act('x', c.IN, { rows }), h = io.o.act('h', c.IN, { rows });
      io.put(xt, x);
      const ys = c.OUTS.map((o, i) => { const y = io.o.act(`y${i}`, o, { rows }); io.put(y, c.accumulate ? y0[i] : undefined); return y; });
      const parts = c.OUTS.map((o, i) => ({ w: io.weight(`w${i}`, hostWeight(ws[i]!, [o, c.IN], c.dtype)), y: ys[i]! }));
      const norm = c.norm ? { w: io.weight('g', hostWeight(g, [c.IN]), false), eps: 1e-5, h } : null;
      await matmulMulti(io.o, xt, norm, parts, 'none', c.accumulate ?? false);
      return Object.fromEntries(ys.map((y, i) => [`y${i}`, y]));
    }, { seed: rng, what: name(c) });
  } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL_MULTI; else process.env.FLA_KERNEL_MATMUL_MULTI = prev;
  }
}

const SLOW = 600_000;   // ms: cold shader JIT on lavapipe

describe.skipIf(!HAS_GPU)('matmul_multi', () => {
  test('default choice: fused up to 16 rows (64 on GPUs, where matmul picks gemv_vec), then split', () => {
    const o = gpuBackend(), a = { x: { rows: 'n', cols: 64 }, parts: [{ w: { dtype: 'bf16', shape: [64, 64] }, y: { rows: 'n' } }], norm: null, act: 'none', accumulate: false } as unknown as MatmulMultiArgs;
    // past 16 rows: fused on GPUs exactly where matmul would run the part on gemv_vec (not on subgroup matrices)
    const part = { x: a.x, w: a.parts[0]!.w, bias: null, y: a.parts[0]!.y, act: 'none', accumulate: false } as MatmulArgs;
    const gemv = (r: number) => gpu!.summary.type !== 'cpu' && o.variant(matmulOp, part, selectCtx(o.adapter, [r])) === 'gemv_vec' ? 'fused' : 'split';
    expect([1, 16, 17, 64, 65, 300].map(r => o.variant(matmulMultiOp, a, selectCtx(o.adapter, [r])))).toEqual(['fused', 'fused', gemv(17), gemv(64), 'split', 'split']);
  });

  // register tiles: RB 1/2/4/8 rows (blocks of 8 past 8) × CB 1/2/4 columns; 40 and 96 are not multiples of a workgroup's columns
  test('fused: q|k|v with the norm, rows 1..64 (blocks of 8 rows past 8), bf16, 16-byte loads', async () => {
    for (const R of [1, 2, 3, 5, 7, 8, 9, 16, 17, 33, 64]) await runCase({ R, IN: 264, OUTS: [96, 40, 40], norm: true, dtype: 'bf16', variant: 'fused' });
  }, SLOW);

  test('fused knobs: 16 rows a lane (FLA_GEMV_ROWS=16; default 8), rows as a loop (FLA_GEMV_ROW_LOOP=1), the part at run time (FLA_GEMV_PART_RT=1) at 1 and 7 rows', async () => {
    for (const [k, v, R] of [['FLA_GEMV_ROWS', '16', 16], ['FLA_GEMV_ROW_LOOP', '1', 8], ['FLA_GEMV_PART_RT', '1', 1], ['FLA_GEMV_PART_RT', '1', 7]] as const) {
      const prev = process.env[k];
      process.env[k] = v;
      try { await runCase({ R, IN: 264, OUTS: [96, 40, 40], norm: true, dtype: 'bf16', variant: 'fused' }); } finally { if (prev === undefined) delete process.env[k]; else process.env[k] = prev; }
    }
  }, SLOW);

  test('fused_wg (workgroup-memory reductions: adapters without subgroups)', async () => {
    for (const R of [1, 2, 8, 17]) await runCase({ R, IN: 264, OUTS: [96, 40, 40], norm: true, dtype: 'bf16', variant: 'fused_wg' });
    await runCase({ R: 3, IN: 130, OUTS: [70, 33], norm: false, dtype: 'f16', accumulate: true, variant: 'fused_wg' });
  }, SLOW);

  test('fused: parts 1..3, with and without the norm, word loads, dtypes', async () => {
    await runCase({ R: 1, IN: 130, OUTS: [70, 33], norm: true, dtype: 'bf16', variant: 'fused' });
    await runCase({ R: 1, IN: 264, OUTS: [200], norm: false, dtype: 'f16', variant: 'fused' });
    await runCase({ R: 1, IN: 264, OUTS: [17, 300, 5], norm: true, dtype: 'f32', variant: 'fused' });
    await runCase({ R: 1, IN: 264, OUTS: [64, 64], norm: true, dtype: 'f16', accumulate: true, variant: 'fused' });
    await runCase({ R: 3, IN: 264, OUTS: [64, 64], norm: true, dtype: 'bf16', rowsK: true, variant: 'fused' });
  }, SLOW);

  test('fused: wide rows (split-K over 256 lanes)', async () => {
    await runCase({ R: 1, IN: 8192, OUTS: [4, 3], norm: true, dtype: 'bf16', variant: 'fused' });
  }, SLOW);

  // as RWKV7 records it: parts reading planes of the 6-plane token-shift mix, each with its own activation
  for (const variant of ['fused', 'split'] as const) {
    test(`planes of a 6-plane input, per-part activations [${variant}]`, async () => {
      for (const R of [1, 3]) {
        const IN = 64, OUTS = [32, 32, 48], planes = [1, 4, 5], acts = ['tanh', 'none', 'sigmoid'] as const;
        const rng = prng(`matmul_multi planes ${variant} ${R}`);
        const mix = randn(6 * R * IN, rng), ws = OUTS.map(o => randn(o * IN, rng, 0.2));
        const prev = process.env.FLA_KERNEL_MATMUL_MULTI;
        process.env.FLA_KERNEL_MATMUL_MULTI = variant;
        try {
          await checkBoth(simpleStep(R), {}, async io => {
            const m = io.o.act('mix', IN, { planes: 6 });
            io.put(m, mix);
            const ys = OUTS.map((o, i) => { const y = io.o.act(`y${i}`, o); io.put(y); return y; });
            await matmulMulti(io.o, m, null, OUTS.map((o, i) => ({ w: io.weight(`w${i}`, hostWeight(ws[i]!, [o, IN], 'bf16')), y: ys[i]!, plane: planes[i]!, xp: io.o.plane(m, planes[i]!), act: acts[i]! })));
            return Object.fromEntries(ys.map((y, i) => [`y${i}`, y]));
          }, { seed: rng, what: `matmul_multi planes [${variant}] R=${R}` });
        } finally {
          if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL_MULTI; else process.env.FLA_KERNEL_MATMUL_MULTI = prev;
        }
      }
    }, SLOW);
  }

  // gate|up of a SwiGLU MLP with the product in the epilogue: each lane group holds gate and up columns of the same
  // outputs; the reference (and 'split') is the two matmuls then silu_mul. Rows 1..64, with and without the norm,
  // widths that leave the last lane group's columns partly empty, word loads, rows 'k', split-K rows (16384 wide).
  for (const variant of ['fused', 'fused_wg', 'split'] as const) {
    test(`SwiGLU epilogue: silu(gate)·up [${variant}]`, async () => {
      type G = [number, number, number, Dtype, boolean, boolean?];
      const cases: G[] = variant === 'fused_wg' ? [[1, 264, 96, 'bf16', true], [7, 264, 40, 'bf16', true], [2, 130, 70, 'f32', false]]
        : variant === 'fused'
        ? [[1, 264, 96, 'bf16', true], [3, 264, 40, 'bf16', true], [16, 264, 33, 'bf16', false], [1, 130, 70, 'bf16', true], [2, 264, 64, 'f16', true], [1, 264, 17, 'f32', false],
          [1, 16384, 5, 'bf16', true], [3, 264, 48, 'bf16', true, true], [8, 264, 70, 'bf16', true], [33, 264, 40, 'bf16', true], [64, 264, 33, 'bf16', false]]
        : [[1, 264, 96, 'bf16', true], [20, 264, 40, 'bf16', true]];
      for (const [R, IN, OUT, dtype, norm, rowsK] of cases) {
        const what = `matmul_multi swiglu [${variant}] R=${R} IN=${IN} OUT=${OUT} ${dtype}${norm ? ' +norm' : ''}${rowsK ? ' rows k' : ''}`, rng = prng(what);
        const step: StepSpec = rowsK ? simpleStep(R + 3, Array.from({ length: R }, (_, j) => (j * 5 + 2) % (R + 3))) : simpleStep(R);
        const rows = rowsK ? 'k' as const : 'n' as const;
        const x = randn(R * IN, rng, 2, 0.3), gn = randn(IN, rng, 0.3, 1);
        const wg = randn(OUT * IN, rng, 2 / Math.sqrt(IN)), wu = randn(OUT * IN, rng, 1 / Math.sqrt(IN));
        const prev = process.env.FLA_KERNEL_MATMUL_MULTI;
        process.env.FLA_KERNEL_MATMUL_MULTI = variant;
        try {
          await checkBoth(step, {}, async io => {
            const xt = io.o.act('x', IN, { rows }), h = io.o.act('h', IN, { rows }), g = io.o.act('g', OUT, { rows }), u = io.o.act('u', OUT, { rows }), out = io.o.act('gu', OUT, { rows });
            io.put(xt, x); io.put(out);
            const parts = [{ w: io.weight('wg', hostWeight(wg, [OUT, IN], dtype)), y: g }, { w: io.weight('wu', hostWeight(wu, [OUT, IN], dtype)), y: u }];
            await matmulMulti(io.o, xt, norm ? { w: io.weight('gn', hostWeight(gn, [IN]), false), eps: 1e-5, h } : null, parts, 'none', false, { out });
            return { out };
          }, { seed: rng, what });
        } finally {
          if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL_MULTI; else process.env.FLA_KERNEL_MATMUL_MULTI = prev;
        }
      }
    }, SLOW);
  }

  test('split: the unfused launches', async () => {
    for (const R of [1, 20]) await runCase({ R, IN: 264, OUTS: [96, 40, 40], norm: true, dtype: 'bf16', variant: 'split' });
  }, SLOW);
});
