// short_conv, both variants (fused: short_conv_fused.wgsl, one dispatch; split: short_conv.wgsl + conv_store.wgsl,
// each forced with FLA_KERNEL_SHORT_CONV) against short_conv.ref.ts: sequences of lengths 1, 2, 3, 7 and 65 packed in
// one step on different slots with a random history (one slot untouched), kernel sizes 4, 2 and 5, with and without
// SiLU, channel counts straddling the 64-thread workgroup, and the packed layout of the delta-rule models (q|k|v
// channels inside a wider projection row, SiLU forced from the v channels on). Compares the output and the whole
// history afterwards (prefill steps and decode steps of one token per slot), and the fused variant against the
// split one on the GPU directly.
import { describe, expect, test } from 'bun:test';
import { expectClose, prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, packedStep, runOn, type Packed } from './harness.ts';
import { shortConv, shortConvOp, type ConvAct, type ConvKernel } from '../../../kernels/conv/short_conv.ts';

const SLOTS = 6;

interface Layout { xCols: number; xOff: number; siluFrom?: number }

async function runCase(kernel: ConvKernel, C: number, W: number, act: ConvAct, seqs: { slot: number; len: number }[], lay?: Layout, gpuOnly = false): Promise<Record<string, Packed>> {
  const l = lay ?? { xCols: C, xOff: 0 };
  const what = `short_conv C=${C} W=${W} ${act} x ${l.xOff}+${C}/${l.xCols} silu from ${l.siluFrom ?? C} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);   // the same inputs for both variants
  const step = packedStep(seqs);
  const N = step.ids.length;
  const x = randn(N * l.xCols, rng), w = randn(C * W, rng, 0.5), hist = randn(SLOTS * (W - 1) * C, rng);
  const prev = process.env.FLA_KERNEL_SHORT_CONV;
  process.env.FLA_KERNEL_SHORT_CONV = kernel;
  try {
    const setup = { states: [{ key: 'conv', cols: (W - 1) * C }], slots: SLOTS, init: { conv: hist } };
    const body = async (io: Parameters<Parameters<typeof checkBoth>[2]>[0]) => {
      const xt = io.o.act('x', l.xCols), y = io.o.act('y', C);
      io.put(xt, x);
      io.put(y);
      const st = io.o.state('conv');
      await shortConv(io.o, xt, io.weight('w', hostWeight(w, [C, 1, W]), false), st, y, act, { xOff: l.xOff, siluFrom: l.siluFrom });
      return { y, state: st, x: xt };
    };
    if (gpuOnly) return await runOn(gpuBackend(), 'gpu', step, setup, body);
    return await checkBoth(step, setup, body, { seed: rng, what: `${kernel} ${what}` });
  } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_SHORT_CONV; else process.env.FLA_KERNEL_SHORT_CONV = prev;
  }
}

const PACKED = [{ slot: 2, len: 7 }, { slot: 0, len: 1 }, { slot: 4, len: 2 }, { slot: 5, len: 3 }, { slot: 3, len: 65 }];
const DECODE = [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }, { slot: 2, len: 1 }];
// q|k|v of a GDN layer (DK 64 → 2·64 + 2·64 + 256 channels) inside a projection row that also holds z, a, b
const QKV: Layout = { xCols: 128 + 128 + 256 + 256 + 4, xOff: 0, siluFrom: 256 };

describe.skipIf(!HAS_GPU)('short_conv', () => {
  test('select: fused by default; FLA_KERNEL_SHORT_CONV=split forces the pair', () => {
    const prev = process.env.FLA_KERNEL_SHORT_CONV;
    delete process.env.FLA_KERNEL_SHORT_CONV;
    try {
      const o = gpuBackend();
      const ctx = { adapter: o.adapter, step: { n: 70, k: 1, b: 2, cap: 70, lens: [65, 5] } } as any;
      expect(shortConvOp.select(ctx, {} as any)).toBe('fused');
    } finally {
      if (prev === undefined) delete process.env.FLA_KERNEL_SHORT_CONV; else process.env.FLA_KERNEL_SHORT_CONV = prev;
    }
  });
  for (const kernel of ['fused', 'split'] as ConvKernel[]) {
    for (const W of [4, 2, 5]) for (const act of ['silu', 'none'] as ConvAct[]) {
      test(`${kernel} W=${W} ${act}: prefill of lengths 1, 2, 3, 7, 65 packed`, async () => {
        await runCase(kernel, 96, W, act, PACKED);
      });
    }
    test(`${kernel} W=4 silu: decode, one token in each of four slots (C = 65, 130)`, async () => {
      await runCase(kernel, 65, 4, 'silu', DECODE);
      await runCase(kernel, 130, 4, 'silu', DECODE);
    });
    for (const act of ['none', 'silu'] as ConvAct[]) {
      test(`${kernel} packed q|k|v part of a wider row, SiLU from v on (${act} before): prefill and decode`, async () => {
        await runCase(kernel, 512, 4, act, PACKED, QKV);
        await runCase(kernel, 512, 4, act, DECODE, QKV);
        await runCase(kernel, 200, 3, act, PACKED, { xCols: 333, xOff: 77, siluFrom: 150 });
      });
    }
  }
  test('fused equals split on the GPU (packed layout, prefill and decode)', async () => {
    for (const seqs of [PACKED, DECODE]) {
      const f = await runCase('fused', 512, 4, 'silu', seqs, QKV, true), s = await runCase('split', 512, 4, 'silu', seqs, QKV, true);
      for (const name of ['y', 'state']) expectClose(f[name]!.data, s[name]!.data, { rtol: 1e-6, what: `fused vs split ${name}`, shape: f[name]!.shape });
    }
  });
});
