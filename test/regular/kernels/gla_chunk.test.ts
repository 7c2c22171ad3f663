// gla chunked prefill (kernels/gla/gla_chunk_{prep,attn,state}.wgsl) and the recurrent kernel, each forced with
// FLA_KERNEL_GLA, against gla.ref.ts (token by token), and chunked directly against recurrent on the GPU (same inputs,
// 1e-4 relative): sequences of lengths 1, 63, 64, 65 and 200 packed on different slots (one slot untouched), zero and
// random initial state, head dims 64 and 128, GQA, the GLA gate with clamp and feature map, and the ungated form.
// Compares o and the whole state afterwards. The normaliser (linear attention's z) always takes the recurrent kernel.
import { describe, expect, test } from 'bun:test';
import { expectClose, prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, packedStep, runOn, selectCtx, type Packed } from './harness.ts';
import { gla, glaOp, type GlaArgs, type GlaKernel } from '../../../kernels/gla/gla.ts';
import { glaStateCols, type Fmap } from '../../../kernels/gla/gla.ref.ts';

const SLOTS = 6;

interface Case { DK: number; DV: number; H: number; HKV: number; gate: boolean; init: boolean; fmap?: Fmap; clampMin?: number | null }

async function runCase(kernel: GlaKernel, c: Case, seqs: { slot: number; len: number }[], gpuOnly = false): Promise<Record<string, Packed>> {
  const what = `gla ${kernel} DK=${c.DK} DV=${c.DV} H=${c.H}/${c.HKV} ${c.gate ? 'gated' : 'ungated'}${c.init ? ' init' : ''} ${c.fmap ?? 'none'} clamp=${c.clampMin ?? null} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what.replace(`gla ${kernel}`, 'gla'));   // the same inputs for both kernels
  const step = packedStep(seqs);
  const N = step.ids.length;
  const { H, HKV, DK, DV } = c;
  const cols = glaStateCols({ H, DK, DV, normalize: false });
  const qv = randn(N * H * DK, rng), kv = randn(N * HKV * DK, rng, 0.5), vv = randn(N * HKV * DV, rng);
  const gk = randn(N * HKV * DK, rng, 2, 1);   // logsigmoid(·)/16: decays in about [e^-0.4, 1)
  const state = c.init ? randn(SLOTS * cols, rng, 0.3) : new Float32Array(SLOTS * cols);
  const prev = process.env.FLA_KERNEL_GLA;
  process.env.FLA_KERNEL_GLA = kernel;
  try {
    const setup = { states: [{ key: 'S', cols }], slots: SLOTS, init: { S: state } };
    const body = async (io: Parameters<Parameters<typeof checkBoth>[2]>[0]) => {
      const q = io.o.act('q', H * DK), k = io.o.act('k', HKV * DK), v = io.o.act('v', HKV * DV), g = io.o.act('gk', HKV * DK), o = io.o.act('o', H * DV);
      io.put(q, qv); io.put(k, kv); io.put(v, vv); io.put(g, gk); io.put(o);
      const st = io.o.state('S');
      await gla(io.o, {
        q, k, v, gk: c.gate ? g : null, state: st, out: o, H, HKV, DK, DV, scale: DK ** -0.5,
        gateNormalizer: 16, clampMin: c.clampMin ?? null, fmap: c.fmap ?? 'none',
      });
      return { o, state: st };
    };
    if (gpuOnly) return await runOn(gpuBackend(), 'gpu', step, setup, body);
    return await checkBoth(step, setup, body, { seed: rng, what });
  } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_GLA; else process.env.FLA_KERNEL_GLA = prev;
  }
}

async function chunkVsRecurrent(c: Case, seqs: { slot: number; len: number }[]): Promise<void> {
  const runs: Record<string, Record<string, Packed>> = {};
  for (const kernel of ['recurrent', 'chunk'] as GlaKernel[]) runs[kernel] = await runCase(kernel, c, seqs, true);
  for (const name of ['o', 'state'])
    expectClose(runs.chunk![name]!.data, runs.recurrent![name]!.data, { rtol: 1e-4, what: `chunk vs recurrent ${name}`, shape: runs.chunk![name]!.shape });
}

const PACKED = [{ slot: 2, len: 63 }, { slot: 0, len: 1 }, { slot: 4, len: 64 }, { slot: 3, len: 65 }, { slot: 5, len: 200 }];

describe.skipIf(!HAS_GPU)('gla chunked', () => {
  test('select: chunk above one chunk of tokens on a GPU adapter, recurrent for decode, CPU adapters and the normaliser; FLA_KERNEL_GLA forces', () => {
    const prev = process.env.FLA_KERNEL_GLA;
    delete process.env.FLA_KERNEL_GLA;
    try {
      const o = gpuBackend(), gpuAdapter = { ...o.adapter, type: 'discrete' }, cpuAdapter = { ...o.adapter, type: 'cpu' };
      const s = (lens: number[], adapter = gpuAdapter) => selectCtx(adapter, lens);
      const d = { normalize: false, DK: 64, DV: 64 } as GlaArgs;
      expect(o.variant(glaOp, d, s([64]))).toBe('recurrent');
      expect(o.variant(glaOp, d, s([65]))).toBe('chunk');
      expect(o.variant(glaOp, d, s([65], cpuAdapter))).toBe('recurrent');
      expect(o.variant(glaOp, d, s(new Array(65).fill(1)))).toBe('recurrent');   // decode of 65 sequences
      expect(o.variant(glaOp, d, s([2, 65]))).toBe('chunk');
      expect(o.variant(glaOp, { ...d, normalize: true }, s([65]))).toBe('recurrent');
      process.env.FLA_KERNEL_GLA = 'recurrent';
      expect(o.variant(glaOp, d, s([500]))).toBe('recurrent');
      process.env.FLA_KERNEL_GLA = 'chunk';
      expect(o.variant(glaOp, d, s([1]))).toBe('chunk');
      expect(o.variant(glaOp, { ...d, normalize: true }, s([500]))).toBe('recurrent');
      process.env.FLA_KERNEL_GLA = 'fast';
      expect(() => o.variant(glaOp, d, s([1]))).toThrow('FLA_KERNEL_GLA=fast: expected one of recurrent, chunk');
    } finally {
      if (prev === undefined) delete process.env.FLA_KERNEL_GLA; else process.env.FLA_KERNEL_GLA = prev;
    }
  });
  for (const D of [64, 128]) {
    for (const init of [false, true]) {
      test(`chunk vs reference DK=DV=${D} GQA 2/1 gated${init ? ' init' : ''}: lengths 63, 1, 64, 65, 200 packed`, () =>
        runCase('chunk', { DK: D, DV: D, H: 2, HKV: 1, gate: true, init }, PACKED));
      test(`chunk equals recurrent on the GPU (1e-4) DK=DV=${D} GQA 2/1 gated${init ? ' init' : ''}`, () =>
        chunkVsRecurrent({ DK: D, DV: D, H: 2, HKV: 1, gate: true, init }, PACKED));
    }
  }
  test('chunk vs reference DK=64 DV=128, H=2, clamp_min, swish feature map, init', () =>
    runCase('chunk', { DK: 64, DV: 128, H: 2, HKV: 2, gate: true, init: true, clampMin: -0.05, fmap: 'swish' }, PACKED));
  test('chunk vs reference DK=128 DV=64, ungated (linear attention without normaliser), init', () =>
    runCase('chunk', { DK: 128, DV: 64, H: 2, HKV: 1, gate: false, init: true }, PACKED));
  test('chunk decode (forced): one token in each of three slots', () =>
    runCase('chunk', { DK: 64, DV: 64, H: 2, HKV: 1, gate: true, init: true }, [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }]));
});
