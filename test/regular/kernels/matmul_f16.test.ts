// The f16 GEMMs (kernels/matmul/matmul_sgmat.ts): the CPU reference of the split arithmetic against f64 (any
// machine); bf16 → f16 conversion counts; the non-matrix f16 variants (f16split, f16single) on any adapter
// with shader-f16 (lavapipe) against that reference and against the f32 matmul; the subgroup-matrix variants
// (sgmat, sgmat_f16) where the adapter has an f16 subgroup-matrix config. Sizes straddle the 64/128 tiles.
import { describe, expect, test } from 'bun:test';
import { matmul, matmulOp } from '../../../kernels/matmul/matmul.ts';
import { matmulRef, type Act } from '../../../kernels/matmul/matmul.ref.ts';
import { matmulF16Ref, rowScale, splitF16 } from '../../../kernels/matmul/matmul_f16.ref.ts';
import { SGMAT_FLUSH_K, SGMAT_TILES, sgmatPlan, sgmatTileOverride, type F16Matmul } from '../../../kernels/matmul/matmul_sgmat.ts';
import type { GpuBackend } from '../../../src/backend/gpu.ts';
import { stepShape } from '../../../src/backend/op.ts';
import { bf16ToF16, F16_MAX_REL, f16Refused } from '../../../src/util/f16.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { gpu, HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, runOn, simpleStep } from './harness.ts';

const f16vals = (v: Float32Array) => Float32Array.from(v, Math.f16round);

/** max |got − want| / max |want| */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < want.length; i++) { d = Math.max(d, Math.abs(got[i]! - want[i]!)); m = Math.max(m, Math.abs(want[i]!)); }
  return d / m;
}

function exactMatmul(x: Float32Array, w: Float32Array, R: number, IN: number, OUT: number): Float64Array {
  const y = new Float64Array(R * OUT);
  for (let r = 0; r < R; r++) for (let o = 0; o < OUT; o++) {
    let s = 0;
    for (let i = 0; i < IN; i++) s += x[r * IN + i]! * w[o * IN + i]!;
    y[r * OUT + o] = s;
  }
  return y;
}

describe('f16 split arithmetic (CPU reference)', () => {
  test('v = hi + lo carries ≥ 21 bits for |v| in [2^-3, 2^14); the row scale puts max |x| in [2^13, 2^14)', () => {
    const rng = prng('split');
    for (let k = 0; k < 20000; k++) {
      const v = Math.fround(Math.min(16000, Math.max(2 ** -3, Math.exp(rng.normal() * 3))) * (rng.normal() < 0 ? -1 : 1));
      const [hi, lo] = splitF16(v);
      expect(Math.f16round(hi)).toBe(hi);
      expect(Math.f16round(lo)).toBe(lo);
      expect(Math.abs(hi + lo - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -21);
    }
    for (const m of [1e-20, 3e-7, 0.5, 1, 7, 9000, 1e30]) {
      const s = rowScale([m / 3, -m, 0]);
      expect(Number.isInteger(Math.log2(s))).toBe(true);
      expect(m * s).toBeGreaterThanOrEqual(2 ** 13 * (1 - 1e-7));
      expect(m * s).toBeLessThan(2 ** 14);
    }
    expect(rowScale([0, 0])).toBe(1);
    expect(rowScale([1, Infinity])).toBe(1);
  });

  test('split is f32-grade against f64; single product is f16-grade and 100× worse', () => {
    const R = 9, IN = 1000, OUT = 7, rng = prng('ref');
    // rows of very different scales (the per-row power of two keeps lo a normal f16 on each)
    const x = Float32Array.from(randn(R * IN, rng), (v, i) => v * 10 ** (Math.floor(i / IN) - 5)), w = f16vals(randn(OUT * IN, rng, 1 / Math.sqrt(IN)));
    const exact = exactMatmul(x, w, R, IN, OUT);
    const ys = new Float32Array(R * OUT), y1 = new Float32Array(R * OUT), yf = new Float32Array(R * OUT);
    matmulF16Ref(x, w, null, ys, R, IN, OUT, 'split');
    matmulF16Ref(x, w, null, y1, R, IN, OUT, 'single');
    matmulRef(x, w, null, yf, R, IN, OUT);
    // worst row (each row relative to its own largest output)
    const rowErr = (y: ArrayLike<number>) => Math.max(...Array.from({ length: R }, (_, r) =>
      relErr(Array.from({ length: OUT }, (_, o) => y[r * OUT + o]!), Array.from({ length: OUT }, (_, o) => exact[r * OUT + o]!))));
    const es = rowErr(ys), e1 = rowErr(y1), ef = rowErr(yf);
    // hi + lo holds 22 of x's 24 bits, and the one f32 accumulator takes 2·IN sequential adds: measured 1.2e-6 to
    // 2.2e-6 over seeds here (worst row), the f32 matmul 3.7e-8, the single product 8.2e-4
    if (process.env.FLA_TEST_VERBOSE === '1') console.log(`split ${es.toExponential(2)}, f32 ${ef.toExponential(2)}, single ${e1.toExponential(2)}`);
    expect(es).toBeLessThan(5e-6);
    expect(ef).toBeLessThan(es);
    expect(e1).toBeGreaterThan(50 * es);
    expect(e1).toBeLessThan(3e-3);
    // the fused x split's scale per row and per SGMAT_FLUSH_K of K (blockScale): as f32-grade
    const yb = new Float32Array(R * OUT);
    matmulF16Ref(x, w, null, yb, R, IN, OUT, 'split', 'none', false, { chunk: SGMAT_FLUSH_K, blockScale: true });
    expect(rowErr(yb)).toBeLessThan(5e-6);
  });

  test('tensor-core summation (the ref\'s truncating mma model): one chain grows with K; restarting every SGMAT_FLUSH_K is f32-grade', () => {
    // the model reproduces the H200's error of the one-chain kernel against the f32 GEMM (1.3e-5 at K 4096): its
    // bias grows linearly with the chain; restarts every SGMAT_FLUSH_K (matmul_sgmat's flush) bring it under the f32
    // FMA chain's own error. Measured here (scripts/sgmat_error.ts, normal x, worst row): f32 1.9e-6, one chain 1.3e-5,
    // with restarts 1.0e-6.
    const R = 3, IN = 4096, OUT = 16, rng = prng('mma');
    const x = randn(R * IN, rng), w = f16vals(randn(OUT * IN, rng, 1 / Math.sqrt(IN)));
    const exact = exactMatmul(x, w, R, IN, OUT);
    const f32 = new Float64Array(R * OUT);
    for (let r = 0; r < R; r++) for (let o = 0; o < OUT; o++) {
      let s = 0;
      for (let i = 0; i < IN; i++) s = Math.fround(s + x[r * IN + i]! * w[o * IN + i]!);   // an f32 FMA chain
      f32[r * OUT + o] = s;
    }
    const run = (chunk: number) => {
      const y = new Float32Array(R * OUT);
      matmulF16Ref(x, w, null, y, R, IN, OUT, 'split', 'none', false, { mma: { block: 16, extraBits: 3 }, chunk });
      return relErr(y, exact);
    };
    const ef = relErr(f32, exact), chain = run(0), flushed = run(SGMAT_FLUSH_K);
    const fy = new Float32Array(R * OUT);   // the fused x split: the scale per restart block too
    matmulF16Ref(x, w, null, fy, R, IN, OUT, 'split', 'none', false, { mma: { block: 16, extraBits: 3 }, chunk: SGMAT_FLUSH_K, blockScale: true });
    const fused = relErr(fy, exact);
    if (process.env.FLA_TEST_VERBOSE === '1') console.log(`f32 ${ef.toExponential(2)}, one chain ${chain.toExponential(2)}, restarts ${flushed.toExponential(2)}, fused ${fused.toExponential(2)}`);
    expect(chain).toBeGreaterThan(3 * ef);
    expect(flushed).toBeLessThan(2 * ef);
    expect(flushed).toBeLessThan(2e-6);
    expect(fused).toBeLessThan(2e-6);
  });

  test('bf16 → f16: exact in range, overflow and subnormal rounding counted', () => {
    const vals = [0, 1, -2.5, 65280, 1e-3, 2 ** -14, 2 ** -17, (1 + 2 ** -7) * 2 ** -18, 1e5, -1e6, Infinity, NaN];
    const u = new Uint32Array(Float32Array.from(vals).buffer);
    const bits = Uint16Array.from(u, v => v >>> 16);   // these values are exact in bf16, except 1e-3 / 1e5 / 1e6 (truncated)
    const c = bf16ToF16(bits);
    const back = new Float16Array(c.data.buffer);
    const asBf16 = Float32Array.from(bits, b => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!);
    for (const i of [0, 1, 2, 3, 4, 5, 6]) expect(back[i]).toBe(asBf16[i]!);
    expect(c.overflow).toBe(4);   // 1e5, -1e6, inf, nan
    expect(c.rounded).toBe(1);    // (1 + 2^-7)·2^-18 has a bit below f16's 2^-24
    expect(f16Refused(c)).toContain('beyond');
    // rel = √(ΣΔ²/Σw²): a tensor of normal-range values with one tiny value is converted; one of tiny values is not
    const bitsOf = (v: number[]) => Uint16Array.from(new Uint32Array(Float32Array.from(v).buffer), u => u >>> 16);
    const ok = bf16ToF16(bitsOf([0.5, -0.25, 0.125, (1 + 2 ** -7) * 2 ** -18])), tiny = bf16ToF16(bitsOf([(1 + 2 ** -7) * 2 ** -18, 2 ** -20, 3 * 2 ** -26]));
    expect(ok.rounded).toBe(1);
    expect(ok.rel).toBeLessThan(F16_MAX_REL);
    expect(f16Refused(ok)).toBeNull();
    expect(tiny.rel).toBeGreaterThan(1e-3);
    expect(f16Refused(tiny)).toContain('below f16');
  });
});

const ROWS = [1, 17, 65, 130];
// [IN, OUT]; 1030: K past four of sgmat's accumulator restarts (SGMAT_FLUSH_K) and, at 17 rows, split in 2 slices
const SHAPES: [number, number][] = [[34, 17], [130, 200], [64, 130], [256, 64], [1030, 72]];

/** Per-variant tolerance against the f32 matmul (relative to the largest output), measured on lavapipe and H200. */
// Measured on lavapipe: f16split ≤ 4.2e-7 against the f32 matmul and bit-equal to the f16 reference; f16single
// ≤ 3.0e-4 plain, 6.6e-4 with bias and tanh (through the f32 reference). The single-product tolerance is 1.5e-3.
const TOL: Record<F16Matmul, number> = { sgmat: 1e-4, f16split: 1e-4, sgmat_f16: 1.5e-3, f16single: 1.5e-3 };

async function withKernel<T>(k: string, fn: () => Promise<T>): Promise<T> {
  const prev = process.env.FLA_KERNEL_MATMUL;
  process.env.FLA_KERNEL_MATMUL = k;
  try { return await fn(); } finally { if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL; else process.env.FLA_KERNEL_MATMUL = prev; }
}

/** Why `kind` cannot run here, or null. */
function unavailable(kind: F16Matmul): string | null {
  if (!gpu) return 'no GPU';
  if (!gpu.f16) return 'no shader-f16';
  if (kind.startsWith('f16')) return null;
  const c = { adapter: gpuBackend().adapter, step: stepShape({ ids: new Int32Array(16), cursors: [{ slot: 0, start: 0, len: 16 }], keep: new Int32Array([15]) }) };
  return sgmatPlan(c, kind === 'sgmat') ? null : 'no f16 subgroup-matrix config with f32 results that fits (see fla devices)';
}

function variantSuite(kind: F16Matmul) {
  const why = unavailable(kind);
  if (why) console.warn(`skip: matmul ${kind} (${why})`);
  describe.skipIf(!HAS_GPU || why !== null)(`matmul ${kind}`, () => {
    const split = kind === 'sgmat' || kind === 'f16split';
    for (const R of ROWS) test(`R=${R}: IN×OUT ${SHAPES.map(s => s.join('×')).join(', ')}, against the f16 reference and the f32 matmul`, async () => {
      for (const [IN, OUT] of SHAPES) {
        const rng = prng(`${kind} ${R} ${IN} ${OUT}`);
        const x = randn(R * IN, rng), w = randn(OUT * IN, rng, 1 / Math.sqrt(IN));
        const got = await withKernel(kind, () => runOn(gpuBackend(), 'gpu', simpleStep(R), {}, async io => {
          const xt = io.o.act('x', IN), yt = io.o.act('y', OUT);
          io.put(xt, x);
          io.put(yt);
          const W = io.weight('w', hostWeight(w, [OUT, IN], 'bf16'));
          expect(W.dtype).toBe('f16');   // converted at load because FLA_KERNEL_MATMUL names an f16 variant
          expect((io.o as GpuBackend).variant(matmulOp, { x: xt, w: W, bias: null, y: yt, act: 'none', accumulate: false })).toBe(kind);
          await matmul(io.o, xt, W, null, 'none', yt);
          return { y: yt };
        }));
        // the GPU converted bf16 → f16 itself: the reference sees the same f16 values
        const wb = Float32Array.from(hostWeight(w, [OUT, IN], 'bf16').bits16!, b => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!);
        const wf = f16vals(wb);
        const ref = new Float32Array(R * OUT), f32 = new Float32Array(R * OUT);
        matmulF16Ref(x, wf, null, ref, R, IN, OUT, split ? 'split' : 'single');
        matmulRef(x, wf, null, f32, R, IN, OUT);
        const y = got.y!.data;
        const eRef = relErr(y, ref), eF32 = relErr(y, f32);
        if (process.env.FLA_TEST_VERBOSE === '1') console.log(`${kind} R=${R} ${IN}×${OUT}: vs f16 ref ${eRef.toExponential(2)}, vs f32 ${eF32.toExponential(2)}`);
        // same arithmetic, other summation order (tensor cores: other rounding inside the sum)
        expect(eRef).toBeLessThan(kind.startsWith('sgmat') ? 2e-5 : 2e-6);
        expect(eF32).toBeLessThan(TOL[kind]);
      }
    });

    if (kind === 'sgmat') test('K 4096: error against f64 within 2× of the f32 GEMM\'s (accumulators restarted every SGMAT_FLUSH_K)', async () => {
      const R = 48, IN = 4096, OUT = 96, rng = prng('sgmat K 4096');
      const x = randn(R * IN, rng), w = randn(OUT * IN, rng, 1 / Math.sqrt(IN));
      const ys: Float32Array[] = [];
      // tile q64 with K unsplit: one accumulator chain per output over all of K, restarted every SGMAT_FLUSH_K (flush)
      // or not (the kernel before SGMAT_FLUSH_K: printed, not asserted)
      // with the flush both x splits: the pre-pass (FLA_SGMAT_FUSE=0) and the fused one (1: the scale per restart block)
      for (const [flush, fuse] of [[true, '0'], [true, '1'], [false, '0']] as const) {
        sgmatTileOverride(SGMAT_TILES.find(t => t.name === 'q64')!, 1, flush);
        const env = process.env.FLA_SGMAT_FUSE;
        process.env.FLA_SGMAT_FUSE = fuse;
        try {
          const got = await withKernel(kind, () => runOn(gpuBackend(), 'gpu', simpleStep(R), {}, async io => {
            const xt = io.o.act('x', IN), yt = io.o.act('y', OUT), yg = io.o.act('yg', OUT);
            io.put(xt, x);
            io.put(yt);
            io.put(yg);
            const W = io.weight('w', hostWeight(w, [OUT, IN], 'bf16'));
            await matmul(io.o, xt, W, null, 'none', yt);
            process.env.FLA_KERNEL_MATMUL = 'gemm';   // the f32 FMA GEMM on the same f16 weights (withKernel restores)
            await matmul(io.o, xt, W, null, 'none', yg);
            return { y: yt, yg };
          }));
          ys.push(got.y!.data, got.yg!.data);
        } finally {
          sgmatTileOverride(null);
          if (env === undefined) delete process.env.FLA_SGMAT_FUSE; else process.env.FLA_SGMAT_FUSE = env;
        }
      }
      const wb = Float32Array.from(hostWeight(w, [OUT, IN], 'bf16').bits16!, b => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!);
      const exact = exactMatmul(x, f16vals(wb), R, IN, OUT);
      const [es, eg, ef, e1] = [ys[0]!, ys[1]!, ys[2]!, ys[4]!].map(y => relErr(y, exact)) as [number, number, number, number];
      console.log(`sgmat K ${IN} against f64: ${es.toExponential(2)}, fused x split ${ef.toExponential(2)} (one chain ${e1.toExponential(2)}), f32 gemm ${eg.toExponential(2)}`);
      expect(es).toBeLessThan(2 * Math.max(eg, 1e-6));
      expect(ef).toBeLessThan(2 * Math.max(eg, 1e-6));
    });

    if (kind === 'sgmat') test('batched decode: the thin tiles with K split in 1, 3 or 8 slices, against f64 within 2× of the f32 GEMM\'s', async () => {
      // IN 2056: a partial last K tile, slices of unequal length (and with 8 of a K-32 tile's 65, a short last one)
      const IN = 2056, OUT = 200;
      for (const R of [17, 40, 64]) {
        const rng = prng(`sgmat thin ${R}`);
        const x = randn(R * IN, rng), w = randn(OUT * IN, rng, 1 / Math.sqrt(IN));
        // the thin tiles sgmatPlan picks (n32 to 32 rows, n64 to 64) and two more shapes of them; each pipeline's first
        // compile takes ~0.2 s on the H200 (all nine thin tiles timed out at bun's default 5 s)
        const plans = SGMAT_TILES.filter(t => ['n32', 'n32x64', 'n64', 'n64d'].includes(t.name) && t.WM * t.TM * 16 >= R).flatMap(t => [1, 3, 8].map(sk => [t, sk] as const));
        const got = await withKernel(kind, () => runOn(gpuBackend(), 'gpu', simpleStep(R), {}, async io => {
          const xt = io.o.act('x', IN), yg = io.o.act('yg', OUT), out: Record<string, unknown> = { yg };
          io.put(xt, x);
          io.put(yg);
          const W = io.weight('w', hostWeight(w, [OUT, IN], 'bf16'));
          for (const [i, [t, sk]] of plans.entries()) {
            const yt = io.o.act(`y${i}`, OUT);
            io.put(yt);
            sgmatTileOverride(t, sk);
            try { await matmul(io.o, xt, W, null, 'none', yt); } finally { sgmatTileOverride(null); }
            out[`y${i}`] = yt;
          }
          process.env.FLA_KERNEL_MATMUL = 'gemm';   // the f32 FMA GEMM on the same f16 weights (withKernel restores)
          await matmul(io.o, xt, W, null, 'none', yg);
          return out as any;
        }));
        const wb = Float32Array.from(hostWeight(w, [OUT, IN], 'bf16').bits16!, b => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!);
        const exact = exactMatmul(x, f16vals(wb), R, IN, OUT), eg = relErr((got as any).yg.data, exact);
        const errs = plans.map(([t, sk], i) => [`${t.name}/k${sk}`, relErr((got as any)[`y${i}`].data, exact)] as const);
        console.log(`sgmat R=${R} K ${IN} against f64: ${errs.map(([n, e]) => `${n} ${e.toExponential(2)}`).join(', ')}; f32 gemm ${eg.toExponential(2)}`);
        for (const [n, e] of errs) expect({ n, ok: e < 2 * Math.max(eg, 1e-6) }).toEqual({ n, ok: true });
      }
    }, 300_000);

    test('bias, activations, accumulate, rows k (through the f32 reference backend)', async () => {
      const acts: Act[] = ['none', 'tanh', 'relu2'];
      for (const [i, act] of acts.entries()) {
        const R = 70, IN = 96, OUT = 72, rng = prng(`${kind} epi ${act}`);
        const x = randn(R * IN, rng), w = randn(OUT * IN, rng, 1 / Math.sqrt(IN)), b = randn(OUT, rng, 0.5), y0 = randn(R * OUT, rng);
        const accumulate = i !== 1;
        await withKernel(kind, () => checkBoth(simpleStep(R), {}, async io => {
          const xt = io.o.act('x', IN), yt = io.o.act('y', OUT);
          io.put(xt, x);
          io.put(yt, accumulate ? y0 : undefined);
          // f16 weights on both backends: the CPU reference multiplies the same values in f32
          await matmul(io.o, xt, io.weight('w', hostWeight(w, [OUT, IN], 'f16')), io.weight('b', hostWeight(b, [OUT]), false), act, yt, accumulate);
          return { y: yt };
        }, { rtol: split ? 1e-4 : TOL[kind], what: `${kind} ${act}` }));
      }
    });
  });
}

for (const k of ['f16split', 'f16single', 'sgmat', 'sgmat_f16'] as const) variantSuite(k);
