// wkv7 chunked prefill (kernels/rwkv7/wkv7_chunk_{prep,mats,solve,state,out}.wgsl, wkv7_chunk.ts) forced with
// FLA_KERNEL_WKV7=chunk, against wkv7.ref.ts (token by token, f64 sums) and directly against the recurrent kernel on
// the GPU (same inputs, 1e-4 relative): head dims 64 and 128, sequences of lengths 1, 33, 63, 64, 65 and 200 packed on
// different slots (chunk 32: 33, 63..65 straddle chunk edges) with random initial states, a 1000-token sequence; decays e^w with
// w = −e^x, x uniform in [−9, 2.5] (decays from 0.9999 to 5e-6), RWKV7's own range w ∈ [−0.61, 0), and tokens whose
// decays jump between near one and near zero inside a chunk; first layer (writes vfirst) and later layers, fused and
// unfused kk norm; the state pass at 4, 8 and 16 value columns per workgroup. Packed equals one by one: a packed step gives each sequence what it gets alone. Compares y,
// vfirst and the whole state afterwards. On a CPU adapter head dim 32 and the state pass at 4 and 16 columns run under one
// WebGPU binding each (rwkv7_helpers.ts otherBindingOnCpu).
import { describe, expect, test } from 'bun:test';
import { expectClose, prng, randn, randu, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, packedStep, runOn, selectCtx, type Packed } from './harness.ts';
import { otherBindingOnCpu } from './rwkv7_helpers.ts';
import { wkv7, wkv7Op, type Wkv7Kernel, type Wkv7Op } from '../../../kernels/rwkv7/wkv7.ts';
import { CHUNK, chunkGeometry } from '../../../kernels/rwkv7/wkv7_chunk.ts';

const SLOTS = 7;   // slot 6 is never in a step: it must come back untouched
const T = 300_000;   // shader compiles and the f64 reference on a loaded 2-core machine (as the other kernel tests)

type Decay = 'rwkv7' | 'wide' | 'jumps';

/** proj planes r, w, k, v, a, g with model-like magnitudes; w by `decay`. */
function projPlanes(N: number, C: number, rng: Prng, decay: Decay): Float32Array {
  const P = N * C;
  const out = new Float32Array(6 * P);
  out.set(randn(P, rng, 0.5), 0);                // r
  if (decay === 'rwkv7') out.set(randu(P, rng, -0.6065, -1e-4), P);   // w = −e^{−0.5}·σ(·)
  else {
    const x = randu(P, rng, -9, 2.5);
    const w = new Float32Array(P);
    for (let i = 0; i < P; i++) w[i] = -Math.exp(x[i]!);
    if (decay === 'jumps') for (let i = 0; i < P; i++) w[i] = (Math.floor(i / C) % 5 === 2) ? -Math.exp(2.5 * x[i]! / 9 + 1.5) : -Math.exp(Math.min(x[i]!, -6));
    out.set(w, P);
  }
  out.set(randn(P, rng, 0.5), 2 * P);            // k
  out.set(randn(P, rng), 3 * P);                 // v
  out.set(randu(P, rng, 0.02, 0.98), 4 * P);     // a = sigmoid(...) in (0, 1)
  out.set(randn(P, rng), 5 * P);                 // g
  return out;
}

interface Case { D: number; first: boolean; fuseNorm: boolean; decay: Decay }

function inputs(c: Case, N: number, what: string) {
  const H = 2, C = H * c.D;
  const rng = prng(what);
  const proj = projPlanes(N, C, rng, c.decay);
  for (const t of [0, 9, 40]) if (t < N) for (let i = 0; i < C; i++) proj[2 * N * C + t * C + i]! *= 1e-4;   // k ≈ 0: fused vs unfused norm
  const vfirst = randn(N * C, rng);
  const vmix = randu(N * C, rng, 0, 1);
  const params = new Float32Array(5 * C);
  params.set(randu(C, rng, 0.5, 1.5), 0);        // k_k
  params.set(randu(C, rng, 0, 1), C);            // k_a
  params.set(randn(C, rng, 0.3), 2 * C);         // r_k
  params.set(randn(C, rng, 0.2, 1), 3 * C);      // g_norm.weight
  params.set(randn(C, rng, 0.2), 4 * C);         // g_norm.bias
  const state = randn(SLOTS * C * c.D, rng, 0.3);
  return { C, proj, vfirst, vmix, params, state, rng };
}

async function forced<T>(kernel: Wkv7Kernel, f: () => Promise<T>): Promise<T> {
  const prev = process.env.FLA_KERNEL_WKV7;
  process.env.FLA_KERNEL_WKV7 = kernel;
  try { return await f(); } finally { if (prev === undefined) delete process.env.FLA_KERNEL_WKV7; else process.env.FLA_KERNEL_WKV7 = prev; }
}

const name = (c: Case, seqs: { slot: number; len: number }[]) =>
  `wkv7 D=${c.D} ${c.first ? 'first' : 'later'}${c.fuseNorm ? ' fuseNorm' : ''} ${c.decay} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;

/** Run one step (kernel forced) on the GPU only, or on both backends compared (gpuOnly false). */
async function runCase(kernel: Wkv7Kernel, c: Case, seqs: { slot: number; len: number }[], gpuOnly = false, what = name(c, seqs),
  data?: ReturnType<typeof inputs>): Promise<Record<string, Packed>> {
  const step = packedStep(seqs);
  const N = step.ids.length;
  const x = data ?? inputs(c, N, what);
  const setup = { states: [{ key: 'wkv', cols: x.C * c.D }], slots: SLOTS, init: { wkv: x.state } };
  const body = async (io: Parameters<Parameters<typeof checkBoth>[2]>[0]) => {
    const p = io.o.act('proj', x.C, { planes: 6 }), vf = io.o.act('vfirst', x.C), vm = io.o.act('vmix', x.C), y = io.o.act('y', x.C);
    io.put(p, x.proj);
    io.put(vf, c.first ? undefined : x.vfirst);
    io.put(vm, x.vmix);
    io.put(y);
    const st = io.o.state('wkv');
    await wkv7(io.o, {
      proj: p, vfirst: vf, vmix: c.first ? null : vm, params: io.weight('params', hostWeight(x.params, [5, x.C]), false),
      state: st, out: y, D: c.D, fuseNorm: c.fuseNorm, gnEps: c.D * 1e-5,
    });
    return { y, vfirst: vf, state: st };
  };
  return forced(kernel, () => gpuOnly ? runOn(gpuBackend(), 'gpu', step, setup, body) : checkBoth(step, setup, body, { seed: x.rng, what: `${kernel} ${what}` }));
}

async function chunkVsRecurrent(c: Case, seqs: { slot: number; len: number }[]): Promise<void> {
  const runs: Record<string, Record<string, Packed>> = {};
  for (const k of ['recurrent', 'chunk'] as Wkv7Kernel[]) runs[k] = await runCase(k, c, seqs, true);
  for (const n of ['y', 'vfirst', 'state']) {
    const what = `${name(c, seqs)} chunk vs recurrent ${n}`;
    const st = expectClose(runs.chunk![n]!.data, runs.recurrent![n]!.data, { rtol: 1e-4, what, shape: runs.chunk![n]!.shape });
    if (process.env.FLA_TEST_VERBOSE === '1') console.log(`${what}: max|Δ|/max|want| = ${st.rel.toExponential(2)}`);
  }
}

const PACKED = [{ slot: 2, len: 63 }, { slot: 0, len: 1 }, { slot: 4, len: 64 }, { slot: 3, len: 65 }, { slot: 5, len: 200 }, { slot: 1, len: 33 }];

describe.skipIf(!HAS_GPU)('wkv7 chunked', () => {
  test('select: chunk above one chunk of tokens on a GPU adapter, recurrent for decode and CPU adapters; FLA_KERNEL_WKV7 forces', () => {
    const prev = process.env.FLA_KERNEL_WKV7;
    delete process.env.FLA_KERNEL_WKV7;
    try {
      const o = gpuBackend(), gpuAdapter = { ...o.adapter, type: 'discrete' }, cpuAdapter = { ...o.adapter, type: 'cpu' };
      const s = (lens: number[], adapter = gpuAdapter) => selectCtx(adapter, lens);
      const d = { D: 64 } as Wkv7Op;
      expect(o.variant(wkv7Op, d, s([64]))).toBe('recurrent');
      expect(o.variant(wkv7Op, d, s([65]))).toBe('chunk');
      expect(o.variant(wkv7Op, d, s([65], cpuAdapter))).toBe('recurrent');
      expect(o.variant(wkv7Op, d, s(new Array(65).fill(1)))).toBe('recurrent');   // decode of 65 sequences
      expect(o.variant(wkv7Op, d, s([2, 65]))).toBe('chunk');
      expect(o.variant(wkv7Op, { D: 128 } as Wkv7Op, s([512]))).toBe('chunk');
      process.env.FLA_KERNEL_WKV7 = 'recurrent';
      expect(o.variant(wkv7Op, d, s([500]))).toBe('recurrent');
      process.env.FLA_KERNEL_WKV7 = 'chunk';
      expect(o.variant(wkv7Op, d, s([1]))).toBe('chunk');
      process.env.FLA_KERNEL_WKV7 = 'fast';
      expect(() => o.variant(wkv7Op, d, s([1]))).toThrow('FLA_KERNEL_WKV7=fast: expected one of recurrent, chunk');
    } finally {
      if (prev === undefined) delete process.env.FLA_KERNEL_WKV7; else process.env.FLA_KERNEL_WKV7 = prev;
    }
  });
  for (const D of [64, 128]) {
    for (const decay of ['rwkv7', 'wide'] as Decay[]) {
      const c = { D, first: false, fuseNorm: true, decay };
      test(`chunk vs reference D=${D} ${decay} decays, later layer: lengths 63, 1, 64, 65, 200, 33 packed`, () => runCase('chunk', c, PACKED), T);
      test(`chunk equals recurrent on the GPU (1e-4) D=${D} ${decay} decays`, () => chunkVsRecurrent(c, PACKED), T);
    }
  }
  test('chunk vs reference D=64 first layer (writes vfirst), unfused norm, decays jumping near 1 ↔ near 0', () =>
    runCase('chunk', { D: 64, first: true, fuseNorm: false, decay: 'jumps' }, PACKED), T);
  test('chunk equals recurrent D=128 first layer, decays jumping', () =>
    chunkVsRecurrent({ D: 128, first: true, fuseNorm: true, decay: 'jumps' }, PACKED), T);
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('chunk equals recurrent at head dim 32 (lengths 65, 130)', async () => {   // D 256 measured once: 2.2e-6 (60 s here)
    for (const D of [32]) await chunkVsRecurrent({ D, first: false, fuseNorm: true, decay: 'wide' }, [{ slot: 1, len: 65 }, { slot: 4, len: 130 }]);
  }, T);
  test('chunk equals recurrent D=64: one sequence of 1000 tokens', () =>
    chunkVsRecurrent({ D: 64, first: false, fuseNorm: true, decay: 'rwkv7' }, [{ slot: 1, len: 1000 }]), T);
  for (const bv of ['4', '16']) {
    test.skipIf(otherBindingOnCpu(bv === '4' ? 'dawn' : 'bun-webgpu'))(`chunk equals recurrent D=64 and 128 with FLA_WKV7_CHUNK_BV=${bv} (the state pass's other geometries)`, async () => {
      const prev = process.env.FLA_WKV7_CHUNK_BV;
      process.env.FLA_WKV7_CHUNK_BV = bv;
      try {
        expect(chunkGeometry(64)).toEqual({ BV: Number(bv), G: Math.min(256 / Number(bv), CHUNK) });
        for (const D of [64, 128]) await chunkVsRecurrent({ D, first: false, fuseNorm: true, decay: 'wide' }, PACKED);
      } finally { if (prev === undefined) delete process.env.FLA_WKV7_CHUNK_BV; else process.env.FLA_WKV7_CHUNK_BV = prev; }
    }, T);
  }
  test('chunk decode (forced): one token in each of three slots, vs reference', () =>
    runCase('chunk', { D: 64, first: false, fuseNorm: true, decay: 'rwkv7' }, [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }]), T);
  test('packed equals one by one (chunk): each sequence of a packed step as in a step of its own', async () => {
    const c: Case = { D: 64, first: false, fuseNorm: true, decay: 'rwkv7' };
    const seqs = [{ slot: 2, len: 130 }, { slot: 0, len: 1 }, { slot: 4, len: 65 }, { slot: 3, len: 7 }];
    const N = seqs.reduce((a, s) => a + s.len, 0);
    const all = inputs(c, N, name(c, seqs));
    const packed = await runCase('chunk', c, seqs, true, undefined, all);
    const C = all.C;
    let start = 0;
    for (const s of seqs) {
      const sl = (a: Float32Array, planes: number) => {
        const out = new Float32Array(planes * s.len * C);
        for (let p = 0; p < planes; p++) out.set(a.subarray(p * N * C + start * C, p * N * C + (start + s.len) * C), p * s.len * C);
        return out;
      };
      const one = { ...all, proj: sl(all.proj, 6), vfirst: sl(all.vfirst, 1), vmix: sl(all.vmix, 1) };
      const alone = await runCase('chunk', c, [s], true, `alone ${s.len}@${s.slot}`, one);
      const py = packed.y!.data.subarray(start * C, (start + s.len) * C);
      expectClose(py, alone.y!.data, { rtol: 1e-6, what: `y of ${s.len}@${s.slot}` });
      const S = C * c.D;
      expectClose(packed.state!.data.subarray(s.slot * S, (s.slot + 1) * S), alone.state!.data.subarray(s.slot * S, (s.slot + 1) * S), { rtol: 1e-6, what: `state of slot ${s.slot}` });
      start += s.len;
    }
  }, T);
});
