// rwkv7_proj (kernels/rwkv7/rwkv7_proj.wgsl): RWKV7's r, k, v and LoRA down-projections of the six mix planes, as one
// GEMV ('fused') or three matmuls + the LoRA GEMV ('split'), against the reference and against seven unfused GPU
// matmuls with their activations. Hidden sizes whose rows straddle the lanes (64, 136, 264, 520), ranks of
// different sizes (layer 0 without V1), bf16 / f16 / f32 weights, decode steps of 1..16 rows of several sequences and
// prefill steps past 16 rows; the portable workgroup-memory reduction ('fused_wg') on two of them.
// On a CPU adapter four cases run under one WebGPU binding each (rwkv7_helpers.ts otherBindingOnCpu).
import { describe, expect, test } from 'bun:test';
import { expectClose, prng, randn, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { otherBindingOnCpu } from './rwkv7_helpers.ts';
import { checkBoth, gpuBackend, hostWeight, packedStep, runOn, selectCtx, type Body } from './harness.ts';
import { rwkv7Proj, rwkv7ProjOp } from '../../../kernels/rwkv7/rwkv7_proj.ts';
import type { LoraRanks } from '../../../kernels/rwkv7/wkv7_lora.ref.ts';
import { matmul } from '../../../kernels/matmul/matmul.ts';
import type { Act } from '../../../kernels/matmul/matmul.ref.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';

type Dtype = 'f32' | 'bf16' | 'f16';

async function runCase(C: number, ranks: LoraRanks, dtype: Dtype, variant: 'fused' | 'fused_wg' | 'split', seqs: { slot: number; len: number }[]): Promise<void> {
  const R = ranks.w + ranks.a + ranks.g + ranks.v;
  const what = `rwkv7_proj C=${C} ranks ${ranks.w},${ranks.a},${ranks.g},${ranks.v} ${dtype} [${variant}] seqs ${seqs.map(s => s.len).join(',')}`;
  const rng: Prng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const mix = randn(6 * N * C, rng);
  const ws = [0, 1, 2].map(() => randn(C * C, rng, 1 / Math.sqrt(C)));
  const wl = randn(R * C, rng, 2 / Math.sqrt(C));
  const body = (fused: boolean): Body => async io => {
    const m = io.o.act('mix', C, { planes: 6 }), p = io.o.act('proj', C, { planes: 6 }), l = io.o.act('lora', R);
    io.put(m, mix);
    // planes 1, 4, 5 of proj are never written: they keep what was put there
    const pinit = new Float32Array(6 * N * C);
    io.put(p, pinit); io.put(l);
    const W = ws.map((w, i) => io.weight(`w${i}`, hostWeight(w, [C, C], dtype)));
    const planes = (t: typeof m) => Array.from({ length: 6 }, (_, i) => io.o.plane(t, i));
    if (fused) {
      await rwkv7Proj(io.o, { mix: m, mixPlanes: planes(m), wr: W[0]!, wk: W[1]!, wv: W[2]!, wl: io.weight('wl', hostWeight(wl, [R, C], dtype)), ranks, proj: p, projPlanes: planes(p), lora: l });
    } else {
      for (const [i, pl] of [[0, 0], [1, 2], [2, 3]] as const) await matmul(io.o, io.o.plane(m, pl), W[i]!, null, 'none', io.o.plane(p, pl));
      const segs: [number, number, number, Act][] = [[ranks.w, 1, 0, 'tanh'], [ranks.a, 4, ranks.w, 'none'], [ranks.g, 5, ranks.w + ranks.a, 'sigmoid'], [ranks.v, 3, ranks.w + ranks.a + ranks.g, 'none']];
      const parts = [];
      for (const [r, pl, i0, act] of segs) {
        if (!r) continue;
        const y = io.o.act(`y${i0}`, r);
        io.put(y);
        await matmul(io.o, io.o.plane(m, pl), io.weight(`wl${i0}`, hostWeight(wl.slice(i0 * C, (i0 + r) * C), [r, C], dtype)), null, act, y);
        parts.push({ y, i0, r });
      }
      // gather the segments into lora's layout on the host side of the comparison
      return Object.fromEntries([['proj', p], ...parts.map(q => [`seg${q.i0}`, q.y])]);
    }
    return { proj: p, lora: l };
  };
  const prev = process.env.FLA_KERNEL_RWKV7_PROJ;
  process.env.FLA_KERNEL_RWKV7_PROJ = variant;
  try {
    const want = await checkBoth(step, {}, body(true), { seed: rng, what });
    const unf = await runOn(gpuBackend(), 'gpu', step, {}, body(false));
    expectClose(unf.proj!.data, want.proj!.data, { what: `${what} proj (unfused GPU ops)`, seed: rng });
    const lora = want.lora!.data;
    let i0 = 0;
    for (const r of [ranks.w, ranks.a, ranks.g, ranks.v]) {
      if (r) {
        const seg = new Float32Array(N * r);
        for (let t = 0; t < N; t++) seg.set(lora.subarray(t * R + i0, t * R + i0 + r), t * r);
        expect(unf[`seg${i0}`]!.shape).toEqual([1, N, r]);
        expectClose(unf[`seg${i0}`]!.data, seg, { what: `${what} lora[${i0}..${i0 + r}) (unfused GPU ops)`, seed: rng });
      }
      i0 += r;
    }
  } finally {
    if (prev === undefined) delete process.env.FLA_KERNEL_RWKV7_PROJ; else process.env.FLA_KERNEL_RWKV7_PROJ = prev;
  }
}

const ones = (n: number) => Array.from({ length: n }, (_, slot) => ({ slot, len: 1 }));

describe.skipIf(!HAS_GPU)('rwkv7_proj', () => {
  test('select: fused up to 16 rows', () => {
    const o = new CpuBackend();
    const w = { dtype: 'bf16' } as never;
    const a = { wr: w, wk: w, wv: w, wl: w } as never;
    expect([[1], [1, 1, 1], [16], [17], [1, 300]].map(l => rwkv7ProjOp.select(selectCtx(o.adapter, l), a))).toEqual(['fused', 'fused', 'fused', 'split', 'split']);
  });
  for (const variant of ['fused', 'split'] as const) {
    test(`C=64 bf16, decode of 1, 3 and 16 sequences [${variant}]`, async () => {
      for (const n of [1, 3, 16]) await runCase(64, { w: 32, a: 32, g: 32, v: 16 }, 'bf16', variant, ones(n));
    }, 300_000);
    test(`C=136 f32, layer 0 ranks, two sequences of 2 and 3 tokens [${variant}]`, async () => {
      await runCase(136, { w: 32, a: 24, g: 40, v: 0 }, 'f32', variant, [{ slot: 0, len: 2 }, { slot: 1, len: 3 }]);
    }, 300_000);
    test(`C=264 f16, decode of 5 sequences [${variant}]`, async () => {
      await runCase(264, { w: 64, a: 64, g: 128, v: 32 }, 'f16', variant, ones(5));
    }, 300_000);
    test(`C=520 bf16, one sequence [${variant}]`, async () => {
      await runCase(520, { w: 64, a: 32, g: 96, v: 16 }, 'bf16', variant, ones(1));
    }, 300_000);
  }
  // the portable reduction (what 'fused' runs without subgroups): two cases, its shaders are slow to build on lavapipe
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('C=136 f32, layer 0 ranks, two sequences of 2 and 3 tokens [fused_wg]', async () => {
    await runCase(136, { w: 32, a: 24, g: 40, v: 0 }, 'f32', 'fused_wg', [{ slot: 0, len: 2 }, { slot: 1, len: 3 }]);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('dawn'))('C=520 bf16, one sequence [fused_wg]', async () => {
    await runCase(520, { w: 64, a: 32, g: 96, v: 16 }, 'bf16', 'fused_wg', ones(1));
  }, 300_000);
  test.skipIf(otherBindingOnCpu('dawn'))('C=1024 bf16, two sequences: several unrolled batches per lane [fused]', async () => {
    await runCase(1024, { w: 64, a: 64, g: 128, v: 32 }, 'bf16', 'fused', ones(2));
  }, 300_000);
  test('C=136 bf16, prefill of 40 tokens packed with 2 decode rows [split]', async () => {
    await runCase(136, { w: 32, a: 32, g: 64, v: 16 }, 'bf16', 'split', [{ slot: 0, len: 40 }, { slot: 1, len: 1 }, { slot: 2, len: 1 }]);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('C=64 f32, 20 rows forced through the fused GEMV (two row blocks) [fused]', async () => {
    await runCase(64, { w: 32, a: 32, g: 32, v: 16 }, 'f32', 'fused', [{ slot: 0, len: 13 }, { slot: 1, len: 7 }]);
  }, 300_000);
});
