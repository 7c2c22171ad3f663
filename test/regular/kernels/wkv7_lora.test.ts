// wkv7_lora (kernels/rwkv7/wkv7_lora.wgsl 'fused', lora_up.wgsl + wkv7_recurrent.wgsl 'split'): the RWKV7 time-mix
// core with its LoRA up-projections, against its reference and against the unfused GPU ops it replaces (four
// matmuls with their activations into the w, a, g planes and vmix, then wkv7). Head dims 64 and 128 (two heads),
// ranks of different sizes, bf16, f16 and f32 up-projections; three sequences of lengths 1, 7 and 65 packed on
// different slots (one more slot untouched) and a decode step of four; layer 0 (writes vfirst) and later layers.
// Compares y, vfirst and the whole state afterwards. On a CPU adapter five cases (the fused_wg ones, two of the fused
// kernel's extra shapes) run under one WebGPU binding each (rwkv7_helpers.ts otherBindingOnCpu).
import { describe, expect, test } from 'bun:test';
import { prng, randn, randu, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { hostWeight, packedStep, selectCtx, type Body } from './harness.ts';
import { checkFused, otherBindingOnCpu, withEnv } from './rwkv7_helpers.ts';
import { wkv7Lora, wkv7LoraOp } from '../../../kernels/rwkv7/wkv7_lora.ts';
import type { LoraRanks } from '../../../kernels/rwkv7/wkv7_lora.ref.ts';
import { wkv7 } from '../../../kernels/rwkv7/wkv7.ts';
import { matmul } from '../../../kernels/matmul/matmul.ts';
import type { Act } from '../../../kernels/matmul/matmul.ref.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';

const SLOTS = 4;
type Seqs = { slot: number; len: number }[];
const PACKED: Seqs = [{ slot: 2, len: 7 }, { slot: 0, len: 1 }, { slot: 3, len: 65 }];

function projPlanes(N: number, C: number, rng: Prng): Float32Array {
  const P = N * C, out = new Float32Array(6 * P);
  out.set(randn(P, rng, 0.5), 0);          // r
  out.set(randn(P, rng), P);               // w, a, g: overwritten (split) or unread (fused)
  out.set(randn(P, rng, 0.5), 2 * P);      // k
  out.set(randn(P, rng), 3 * P);           // v
  out.set(randn(2 * P, rng), 4 * P);
  return out;
}

async function runCase(D: number, ranks: LoraRanks, dtype: 'f32' | 'bf16' | 'f16', variant: 'fused' | 'fused_wg' | 'split' | 'chunk', seqs: Seqs = PACKED, fuseNorm = false): Promise<void> {
  const H = 2, C = H * D, R = ranks.w + ranks.a + ranks.g + ranks.v, first = ranks.v === 0;
  const what = `wkv7_lora D=${D} ranks ${ranks.w},${ranks.a},${ranks.g},${ranks.v} ${dtype} [${variant}] seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const proj = projPlanes(N, C, rng);
  const lora = new Float32Array(N * R);
  for (let t = 0; t < N; t++) {
    const row = lora.subarray(t * R, (t + 1) * R);
    row.set(randu(ranks.w, rng, -1, 1), 0);                       // tanh(…)
    row.set(randn(ranks.a, rng, 0.5), ranks.w);
    row.set(randu(ranks.g, rng, 0, 1), ranks.w + ranks.a);        // σ(…)
    row.set(randn(ranks.v, rng, 0.5), ranks.w + ranks.a + ranks.g);
  }
  const wu = randn(R * C, rng, 1 / Math.sqrt(32));                // [R, C]
  const params = new Float32Array(8 * C);
  params.set(randu(C, rng, 0.5, 1.5), 0);        // k_k
  params.set(randu(C, rng, 0, 1), C);            // k_a
  params.set(randn(C, rng, 0.3), 2 * C);         // r_k
  params.set(randn(C, rng, 0.2, 1), 3 * C);      // g_norm.weight
  params.set(randn(C, rng, 0.2), 4 * C);         // g_norm.bias
  params.set(randn(C, rng, 0.5, -1), 5 * C);     // w0
  params.set(randn(C, rng, 0.5), 6 * C);         // a0
  params.set(randn(C, rng, 0.5), 7 * C);         // v0
  const vfirst = randn(N * C, rng);
  const state = randn(SLOTS * C * D, rng, 0.3);
  const setup = { states: [{ key: 'wkv', cols: C * D }], slots: SLOTS, init: { wkv: state } };
  const inputs = (io: Parameters<Body>[0]) => {
    const p = io.o.act('proj', C, { planes: 6 }), l = io.o.act('lora', R), vf = io.o.act('vfirst', C), y = io.o.act('y', C);
    io.put(p, proj); io.put(l, lora); io.put(vf, first ? undefined : vfirst); io.put(y);
    return { p, l, vf, y, st: io.o.state('wkv'), params: io.weight('params', hostWeight(params, [8, C]), false) };
  };
  const fused: Body = async io => {
    const { p, l, vf, y, st, params: pw } = inputs(io);
    await wkv7Lora(io.o, { proj: p, lora: l, wu: io.weight('wu', hostWeight(wu, [R, C], dtype)), ranks, params: pw, vfirst: vf, state: st, out: y, D, fuseNorm, gnEps: D * 1e-5 });
    return { y, vfirst: vf, state: st };
  };
  // the unfused path: each up-projection an nn.Linear [C, r] (the transposed rows of wu) into its own tensor
  const unfused: Body = async io => {
    const { p, l, vf, y, st, params: pw } = inputs(io);
    const lin = async (i0: number, r: number, bias: number | null, act: Act, out: ReturnType<typeof io.o.act>) => {
      const w = new Float32Array(C * r), x = new Float32Array(N * r);
      for (let i = 0; i < r; i++) for (let c = 0; c < C; c++) w[c * r + i] = wu[(i0 + i) * C + c]!;
      for (let t = 0; t < N; t++) x.set(lora.subarray(t * R + i0, t * R + i0 + r), t * r);
      const xt = io.o.act(`x${i0}`, r);
      io.put(xt, x);
      const b = bias === null ? null : io.weight(`b${i0}`, hostWeight(params.slice(bias * C, (bias + 1) * C), [C]), false);
      await matmul(io.o, xt, io.weight(`w${i0}`, hostWeight(w, [C, r], dtype)), b, act, out);
    };
    const vm = io.o.act('vmix', C);
    await lin(0, ranks.w, 5, 'rwkv_decay', io.o.plane(p, 1));
    await lin(ranks.w, ranks.a, 6, 'sigmoid', io.o.plane(p, 4));
    await lin(ranks.w + ranks.a, ranks.g, null, 'none', io.o.plane(p, 5));
    if (!first) await lin(ranks.w + ranks.a + ranks.g, ranks.v, 7, 'sigmoid', vm);
    void l;
    await wkv7(io.o, { proj: p, vfirst: vf, vmix: first ? null : vm, params: pw, state: st, out: y, D, fuseNorm, gnEps: D * 1e-5 });
    return { y, vfirst: vf, state: st };
  };
  await checkFused('FLA_KERNEL_WKV7_LORA', variant, step, setup, fused, unfused, rng, what);
}

describe.skipIf(!HAS_GPU)('wkv7_lora', () => {
  test('select: fused while every sequence has ≤ 16 tokens; past that chunk where wkv7 chunks (> 64 tokens, GPU adapters)', () => {
    const o = new CpuBackend(), gpuAdapter = { ...o.adapter, type: 'discrete', maxInvocations: 256, maxWorkgroupStorage: 32768 };
    const a = { D: 64, wu: { dtype: 'bf16' }, out: { cols: 128 } } as never;
    expect([[1], [1, 1, 1], [16, 1], [17], [1, 300]].map(l => wkv7LoraOp.select(selectCtx(o.adapter, l), a))).toEqual(['fused', 'fused', 'fused', 'split', 'split']);
    expect([[16, 1], [17], [64], [1, 300]].map(l => wkv7LoraOp.select(selectCtx(gpuAdapter, l), a))).toEqual(['fused', 'split', 'split', 'chunk']);
  });
  for (const variant of ['fused', 'split', 'chunk'] as const) {
    for (const D of [64, 128]) {
      test(`D=${D} later layer, ${D === 64 ? 'bf16' : 'f16'} [${variant}]`, async () => {
        await runCase(D, D === 64 ? { w: 32, a: 32, g: 64, v: 16 } : { w: 64, a: 40, g: 48, v: 24 }, D === 64 ? 'bf16' : 'f16', variant);
      }, 300_000);
      test(`D=${D} layer 0 (writes vfirst), f32 [${variant}]`, async () => {
        await runCase(D, { w: 32, a: 24, g: 32, v: 0 }, 'f32', variant);
      }, 300_000);
    }
    test(`D=64 decode, one token in each of four slots, fuseNorm [${variant}]`, async () => {
      await runCase(64, { w: 32, a: 32, g: 32, v: 16 }, 'bf16', variant, [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }, { slot: 2, len: 1 }], true);
    }, 300_000);
  }
  // the fused kernel's row batches: ranks that are not multiples of the row groups, more rows than one batch
  test('D=64 ranks 96, 96, 256, 64 (rwkv7-1.5b), decode of two slots [fused]', async () => {
    await runCase(64, { w: 96, a: 96, g: 256, v: 64 }, 'bf16', 'fused', [{ slot: 1, len: 1 }, { slot: 3, len: 1 }]);
  }, 300_000);
  test.skipIf(otherBindingOnCpu('dawn'))('D=64 ranks 96, 96, 256, 64 in batches of 3 rows a thread (FLA_WKV7_LORA_KB=3: the last batch partial) [fused]', async () => {
    await withEnv('FLA_WKV7_LORA_KB', '3', async () => {
        await runCase(64, { w: 96, a: 96, g: 256, v: 64 }, 'bf16', 'fused', [{ slot: 1, len: 1 }, { slot: 3, len: 1 }]);
    });
  }, 300_000);
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('D=128 ranks 40, 24, 72, 20, f32, decode of one slot [fused]', async () => {
    await runCase(128, { w: 40, a: 24, g: 72, v: 20 }, 'f32', 'fused', [{ slot: 2, len: 1 }]);
  }, 300_000);
  // SGP (the default with subgroups; FLA_WKV7_LORA_SGP=0 the older reductions, kept covered below): the prologue's
  // sums over each subgroup's lanes first. D=32 bf16 (4 units a row) shuffles at
  // strides 4 … on 8-lane subgroups (lavapipe), D=64 bf16 at 8, 16 on 32-lane ones; D=128 f16 (16 units) has lane
  // blocks wider than an 8-lane subgroup
  for (const [D, ranks, dtype, seqs] of [
    [32, { w: 24, a: 16, g: 40, v: 8 }, 'bf16', PACKED],
    [64, { w: 96, a: 96, g: 256, v: 64 }, 'bf16', [{ slot: 1, len: 1 }, { slot: 3, len: 1 }]],
    [128, { w: 40, a: 24, g: 72, v: 0 }, 'f16', [{ slot: 2, len: 1 }]],
  ] as const) {
    test(`D=${D} ranks ${ranks.w}, ${ranks.a}, ${ranks.g}, ${ranks.v} ${dtype} [fused]`, async () => {
      await runCase(D, ranks, dtype, 'fused', seqs as unknown as Seqs);
    }, 300_000);
  }
  for (const D of [64, 128]) {
    test(`D=${D} later layer with FLA_WKV7_LORA_SGP=0 [fused]`, async () => {
      await withEnv('FLA_WKV7_LORA_SGP', '0', () => runCase(D, D === 64 ? { w: 32, a: 32, g: 64, v: 16 } : { w: 64, a: 40, g: 48, v: 24 }, D === 64 ? 'bf16' : 'f16', 'fused'));
    }, 300_000);
  }
  // the portable reductions (what 'fused' runs without subgroups)
  for (const D of [64, 128]) {
    test.skipIf(otherBindingOnCpu(D === 64 ? 'bun-webgpu' : 'dawn'))(`D=${D} later layer, ${D === 64 ? 'bf16' : 'f16'} [fused_wg]`, async () => {
      await runCase(D, D === 64 ? { w: 32, a: 32, g: 64, v: 16 } : { w: 64, a: 40, g: 48, v: 24 }, D === 64 ? 'bf16' : 'f16', 'fused_wg');
    }, 300_000);
  }
  test.skipIf(otherBindingOnCpu('bun-webgpu'))('D=64 layer 0 (writes vfirst), f32 [fused_wg]', async () => {
    await runCase(64, { w: 32, a: 24, g: 32, v: 0 }, 'f32', 'fused_wg');
  }, 300_000);
});
