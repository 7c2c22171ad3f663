// F8_E4M3 weights decoded inside the kernels (kernels/moe/wquad.wgsl, moe_unit.wgsl): the fp8 matmul (16-byte-load
// GEMV with subgroup / workgroup reductions and the tiled GEMM, kernels/matmul/matmul_fp8*) against the
// dequantized reference on widths straddling the 64-wide tiles and the 128 scale blocks, every one of the 256 byte
// values (subnormals, ±0, the largest 448), other block sizes, bias, activation, accumulation and kept rows; and
// matmul_fp8_multi (sibling projections behind their RMSNorm, two per dispatch) against its unfused reference.
import { describe, expect, test } from 'bun:test';
import type { HostWeight } from '../../../src/backend/backend.ts';
import { matmul } from '../../../kernels/matmul/matmul.ts';
import { matmulFp8Conv, matmulFp8Gated, matmulFp8Multi, matmulFp8Seg } from '../../../kernels/matmul/matmul_fp8.ts';
import { e4m3ToF32 } from '../../../src/load/safetensors.ts';
import { prng, randn, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, packedStep, simpleStep } from './harness.ts';

function fp8(R: number, C: number, rng: Prng, br = 128, bc = 128, all = false, sub = false): HostWeight {
  const bytes = new Uint8Array(R * C);
  for (let i = 0; i < bytes.length; i++) {
    // sub: only the subnormals (exponent 0, mantissa 1-7) of either sign
    let b = sub ? (1 + rng.int(7)) | (rng.int(2) << 7) : all ? i % 256 : rng.int(256);
    if ((b & 0x7f) === 0x7f) b = all ? b & 0x80 : b ^ 1;   // no NaN
    bytes[i] = b;
  }
  const S = Math.ceil(R / br) * Math.ceil(C / bc);
  return { shape: [R, C], dtype: 'fp8', fp8: { bytes, scale: Float32Array.from({ length: S }, () => rng.uniform(0.25, 4) / 448), rp: R, br, bc } };
}

test('e4m3 table: subnormals, zero, 448, sign', () => {
  expect(e4m3ToF32(0x00)).toBe(0);
  expect(e4m3ToF32(0x01)).toBe(2 ** -9);
  expect(e4m3ToF32(0x07)).toBe(7 * 2 ** -9);
  expect(e4m3ToF32(0x08)).toBe(2 ** -6);
  expect(e4m3ToF32(0x38)).toBe(1);
  expect(e4m3ToF32(0x7e)).toBe(448);
  expect(e4m3ToF32(0xfe)).toBe(-448);
  expect(Number.isNaN(e4m3ToF32(0x7f))).toBe(true);
});

describe.skipIf(!HAS_GPU)('matmul_fp8', () => {
  const cases: { N: number; IN: number; OUT: number; br?: number; bc?: number; all?: boolean; sub?: boolean; bias?: boolean; act?: 'sigmoid'; acc?: boolean; rowsK?: boolean; or?: '1' | '2' | '4' }[] = [
    { N: 1, IN: 256, OUT: 16, all: true },
    { N: 2, IN: 256, OUT: 24, sub: true },   // subnormal weights only: a decode that flushes them gives 0
    { N: 3, IN: 260, OUT: 131, bias: true },
    { N: 8, IN: 132, OUT: 200, br: 64, bc: 32, acc: true },
    { N: 2, IN: 192, OUT: 70, br: 64, bc: 48 },
    { N: 65, IN: 388, OUT: 130, act: 'sigmoid' },
    { N: 130, IN: 128, OUT: 67, bias: true, acc: true },
    { N: 70, IN: 196, OUT: 40, rowsK: true },
    { N: 1, IN: 4096, OUT: 40, acc: true },   // 8 units a lane: UNROLL 8
    // FLA_FP8_ROWS: 1 / 2 / 4 outputs a lane group (2 is one row's default), the last group of an odd OUT partly past it
    { N: 1, IN: 260, OUT: 131, bias: true, or: '1' },
    { N: 3, IN: 260, OUT: 131, bias: true, or: '2' },
    { N: 1, IN: 2048, OUT: 43, acc: true, or: '4' },
  ];
  for (const c of cases) {
    const what = `matmul_fp8 N=${c.N} ${c.IN}→${c.OUT} blocks ${c.br ?? 128}×${c.bc ?? 128}${c.sub ? ' subnormal weights' : ''}${c.bias ? ' bias' : ''}${c.act ? ` ${c.act}` : ''}${c.acc ? ' accumulate' : ''}${c.rowsK ? ' kept rows' : ''}${c.or ? `, ${c.or} outputs a lane group` : ''}`;
    test(what, async () => {
      const rng = prng(what);
      const step = simpleStep(c.N, c.rowsK ? [0, 5, c.N - 1] : [c.N - 1]);
      const R = c.rowsK ? 3 : c.N;
      const w = fp8(c.OUT, c.IN, rng, c.br, c.bc, c.all, c.sub), x = randn(R * c.IN, rng), y0 = randn(R * c.OUT, rng), b = randn(c.OUT, rng);
      for (const kernel of c.or ? ['gemv_vec', 'gemv_vec_wg'] : c.N <= 8 ? ['gemv_vec', 'gemv_vec_wg', 'gemm'] : ['gemm']) {
        process.env.FLA_KERNEL_MATMUL_FP8 = kernel;
        if (c.or) process.env.FLA_FP8_ROWS = c.or;
        try {
          await checkBoth(step, {}, async io => {
            const rows = c.rowsK ? 'k' : 'n';
            const xt = io.o.act('x', c.IN, { rows }), y = io.o.act('y', c.OUT, { rows });
            io.put(xt, x); io.put(y, c.acc ? y0 : undefined);
            const wt = io.weight('w', w), bt = c.bias ? io.weight('b', hostWeight(b, [c.OUT]), false) : null;
            await matmul(io.o, xt, wt, bt, c.act ?? 'none', y, c.acc ?? false);
            return { y };
          }, { seed: rng, what: `${what} (${kernel})` });
        } finally { delete process.env.FLA_KERNEL_MATMUL_FP8; delete process.env.FLA_FP8_ROWS; }
      }
    }, 300_000);
  }
});

describe.skipIf(!HAS_GPU)('matmul_fp8_multi', () => {
  const cases: { N: number; IN: number; outs: number[]; norm: boolean; acts?: ('none' | 'sigmoid')[]; bc?: number; acc?: boolean }[] = [
    { N: 1, IN: 256, outs: [64, 40, 72], norm: true, acts: ['none', 'sigmoid', 'none'] },
    { N: 3, IN: 260, outs: [131, 20], norm: true },
    { N: 8, IN: 384, outs: [48], norm: false, acc: true },
    { N: 5, IN: 128, outs: [36, 36, 12, 12], norm: true, bc: 32 },
    { N: 9, IN: 256, outs: [64, 40, 72], norm: true, acts: ['none', 'sigmoid', 'none'] },
    // a row of 128 units: split-K lanes wider than a subgroup, the unrolled loop, the workgroup-wide norm prologue
    { N: 2, IN: 2048, outs: [40, 9], norm: true },
    // a tall staged GEMV: lane groups narrowed to 16 (16 rows a workgroup); a 4096-wide row staged whole, 8 units a lane
    { N: 1, IN: 512, outs: [4200], norm: true },
    { N: 1, IN: 4096, outs: [24, 8], norm: true },
  ];
  for (const c of cases) {
    const what = `matmul_fp8_multi N=${c.N} ${c.IN}→${c.outs.join('|')}${c.norm ? ' behind RMSNorm' : ''}${c.bc ? ` blocks 128×${c.bc}` : ''}${c.acc ? ' accumulate' : ''}`;
    test(what, async () => {
      const rng = prng(what);
      const ws = c.outs.map(o => fp8(o, c.IN, rng, 128, c.bc ?? 128)), x = randn(c.N * c.IN, rng), gn = Float32Array.from(randn(c.IN, rng, 0.3), v => 1 + v);
      const y0 = c.outs.map(o => randn(c.N * o, rng));
      // ≤ 8 rows: the subgroup reductions (default) and the workgroup-memory ones ('wg')
      for (const variant of c.N <= 8 ? ['default', 'wg'] : ['default']) {
        process.env.FLA_KERNEL_MATMUL_FP8_MULTI = variant;
        try {
          await checkBoth(simpleStep(c.N), {}, async io => {
            const xt = io.o.act('x', c.IN), ys = c.outs.map((o, i) => io.o.act(`y${i}`, o));
            io.put(xt, x);
            ys.forEach((y, i) => io.put(y, c.acc ? y0[i] : undefined));
            const norm = c.norm ? { w: io.weight('gn', hostWeight(gn, [c.IN]), false), eps: 1e-6, h: io.o.act('h', c.IN) } : null;
            await matmulFp8Multi(io.o, xt, norm, ws.map((w, i) => ({ w: io.weight(`w${i}`, w), y: ys[i]!, act: c.acts?.[i] })), 'none', c.acc ?? false);
            return Object.fromEntries(ys.map((y, i) => [`y${i}`, y]));
          }, { seed: rng, what: `${what} (${variant})` });
        } finally { delete process.env.FLA_KERNEL_MATMUL_FP8_MULTI; }
      }
    }, 300_000);
  }
});

describe.skipIf(!HAS_GPU)('matmul_fp8_conv', () => {
  // decode steps (one token per sequence, slots out of order, one slot fresh) take 'fused'; a prefill step 'split'
  const cases: { seqs: { slot: number; len: number }[]; IN: number; OUT: number; C: number; W: number; silu: boolean; bc?: number }[] = [
    { seqs: [{ slot: 0, len: 1 }], IN: 256, OUT: 200, C: 96, W: 4, silu: true },
    { seqs: [{ slot: 2, len: 1 }, { slot: 0, len: 1 }, { slot: 3, len: 1 }], IN: 260, OUT: 131, C: 131, W: 3, silu: false },
    { seqs: [{ slot: 1, len: 1 }, { slot: 3, len: 1 }], IN: 384, OUT: 300, C: 260, W: 4, silu: true, bc: 64 },
    { seqs: [{ slot: 1, len: 3 }, { slot: 2, len: 2 }], IN: 256, OUT: 200, C: 96, W: 4, silu: true },
  ];
  const SLOTS = 4;
  for (const c of cases) {
    const N = c.seqs.reduce((n, s) => n + s.len, 0);
    const what = `matmul_fp8_conv ${c.seqs.map(s => `slot ${s.slot}×${s.len}`).join(', ')} ${c.IN}→${c.OUT}, conv over ${c.C} W ${c.W}${c.silu ? ' silu' : ''}`;
    test(what, async () => {
      const rng = prng(what);
      const w = fp8(c.OUT, c.IN, rng, 128, c.bc ?? 128), x = randn(N * c.IN, rng), gn = Float32Array.from(randn(c.IN, rng, 0.3), v => 1 + v);
      const taps = randn(c.C * c.W, rng, 0.5), hist = randn(SLOTS * (c.W - 1) * c.C, rng);
      hist.fill(0, 0, (c.W - 1) * c.C);   // slot 0 fresh
      const aux = new Float32Array(c.IN + c.C * c.W);
      aux.set(gn); aux.set(taps, c.IN);
      const setup = { states: [{ key: 'conv', cols: (c.W - 1) * c.C }], slots: SLOTS, init: { conv: hist } };
      for (const kernel of N === c.seqs.length ? ['fused', 'split'] : [undefined]) {
        if (kernel) process.env.FLA_KERNEL_MATMUL_FP8_CONV = kernel;
        try {
          await checkBoth(packedStep(c.seqs), setup, async io => {
            const xt = io.o.act('x', c.IN), y = io.o.act('y', c.OUT), cy = io.o.act('cy', c.C), st = io.o.state('conv');
            io.put(xt, x); io.put(y); io.put(cy);
            await matmulFp8Conv(io.o, xt, { w: io.weight('gn', hostWeight(gn, [c.IN]), false), eps: 1e-6, h: io.o.act('h', c.IN) }, io.weight('w', w), y,
              { w: io.weight('taps', hostWeight(taps, [c.C, 1, c.W]), false), aux: io.weight('aux', hostWeight(aux, [aux.length]), false), state: st, y: cy, act: c.silu ? 'silu' : 'none' });
            return { y, cy, state: st };
          }, { seed: rng, what: `${what} (${kernel ?? 'selected'})` });
        } finally { delete process.env.FLA_KERNEL_MATMUL_FP8_CONV; }
      }
    }, 300_000);
  }
});

describe.skipIf(!HAS_GPU)('matmul_fp8_seg and matmul_fp8_gated', () => {
  // q | gate (sigmoid) | k | v of one stacked weight; rows 1, 3 (fused) and 9 (split: a GEMM per segment)
  for (const [N, IN, segs, bc] of [[1, 256, [128, 128, 32, 20], 128], [3, 260, [64, 64, 24], 64], [9, 256, [128, 128, 64, 64], 128], [2, 128, [40], 128]] as const) {
    const what = `matmul_fp8_seg N=${N} ${IN}→${segs.join('|')} blocks 64×${bc}`;
    test(what, async () => {
      const rng = prng(what), total = segs.reduce((a, b) => a + b, 0);
      const w = fp8(total, IN, rng, 64, bc), x = randn(N * IN, rng), gn = Float32Array.from(randn(IN, rng, 0.3), v => 1 + v);
      for (const kernel of N <= 8 ? ['fused', 'split'] : [undefined]) {
        if (kernel) process.env.FLA_KERNEL_MATMUL_FP8_SEG = kernel;
        try {
          await checkBoth(simpleStep(N), {}, async io => {
            const xt = io.o.act('x', IN), ys = segs.map((n, i) => io.o.act(`y${i}`, n));
            io.put(xt, x); ys.forEach(y => io.put(y));
            await matmulFp8Seg(io.o, xt, { w: io.weight('gn', hostWeight(gn, [IN]), false), eps: 1e-6, h: io.o.act('h', IN) }, io.weight('w', w),
              ys.map((y, i) => ({ y, act: i === 1 ? 'sigmoid' as const : 'none' as const })));
            return Object.fromEntries(ys.map((y, i) => [`y${i}`, y]));
          }, { seed: rng, what: `${what} (${kernel ?? 'selected'})` });
        } finally { delete process.env.FLA_KERNEL_MATMUL_FP8_SEG; }
      }
    }, 300_000);
  }
  for (const [N, IN, OUT, bias] of [[1, 256, 72, false], [4, 260, 33, true], [11, 128, 40, false]] as const) {
    const what = `matmul_fp8_gated N=${N} ${IN}→${OUT}${bias ? ' bias' : ''} accumulate`;
    test(what, async () => {
      const rng = prng(what);
      const w = fp8(OUT, IN, rng), x = randn(N * IN, rng), g = randn(N * IN, rng), y0 = randn(N * OUT, rng), b = randn(OUT, rng);
      for (const kernel of N <= 8 ? ['fused', 'split'] : [undefined]) {
        if (kernel) process.env.FLA_KERNEL_MATMUL_FP8_GATED = kernel;
        try {
          await checkBoth(simpleStep(N), {}, async io => {
            const xt = io.o.act('x', IN), gt = io.o.act('g', IN), y = io.o.act('y', OUT);
            io.put(xt, x); io.put(gt, g); io.put(y, y0);
            await matmulFp8Gated(io.o, xt, gt, io.weight('w', w), bias ? io.weight('b', hostWeight(b, [OUT]), false) : null, 'none', y, true);
            return { y };
          }, { seed: rng, what: `${what} (${kernel ?? 'selected'})` });
        } finally { delete process.env.FLA_KERNEL_MATMUL_FP8_GATED; }
      }
    }, 300_000);
  }
});
