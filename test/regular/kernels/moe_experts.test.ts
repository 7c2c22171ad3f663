// Sparse MoE kernels (kernels/moe): moe_topk against its reference, and the routed experts (moe_experts, GEMV and
// grouped variants) against the CPU reference and against the dense formula (every expert over every token, weight 0
// where not chosen, with the dense router moe_route). Odd token / expert / width counts straddling the 64-row tiles,
// experts no token picks, rows whose top-k ties (lower index wins), f32 / bf16 / fp8 weights, and experts cut into
// several parts (one dispatch per part); with a shared expert (its sigmoid gate the router's last logit column) folded
// into the fused GEMV launches, launched on its own when its dtype differs, and as a dense segment of the grouped GEMM;
// the fused GEMVs against the unfused composition (every expert op on its own: shared expert by matmul, silu_mul, mul).
import { describe, expect, test } from 'bun:test';
import type { HostWeight, Tensor } from '../../../src/backend/backend.ts';
import { moeDenseRef } from '../../../kernels/moe/moe_experts.ref.ts';
import { expertWeights, moeExperts, sharedExpert } from '../../../kernels/moe/moe_experts.ts';
import { matmul } from '../../../kernels/matmul/matmul.ts';
import { mul } from '../../../kernels/elementwise/mul.ts';
import { siluMul } from '../../../kernels/elementwise/silu_mul.ts';
import { rmsNorm } from '../../../kernels/norm/rms_norm.ts';
import { rmsNormRef } from '../../../kernels/norm/rms_norm.ref.ts';
import { moeRouteRef } from '../../../kernels/moe/moe_route.ref.ts';
import { moeTopk, selCols } from '../../../kernels/moe/moe_topk.ts';
import { dequantFp8 } from '../../../src/load/safetensors.ts';
import { stackRows } from '../../../src/models/moe.ts';
import { expectClose, prng, randn, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, runOn, simpleStep, type Io } from './harness.ts';

/** Router logits [N, E]: random, with row 0 all tied and row 1 tied at the top (when N allows). */
function routerLogits(N: number, E: number, rng: Prng): Float32Array {
  const l = randn(N * E, rng, 2);
  if (N > 1) l.fill(0.25, 0, E);
  if (N > 2) for (let e = 0; e < E; e++) if (e % 3 === 1) l[E + e] = 4;
  return l;
}

/** Random F8_E4M3 bytes (no NaN) and block scales for a tensor [E, R, C] with scale parts of rp rows. */
function fp8Weight(E: number, R: number, C: number, rp: number, rng: Prng, br = 128, bc = 128): HostWeight {
  const bytes = new Uint8Array(E * R * C);
  for (let i = 0; i < bytes.length; i++) { let b = rng.int(256); if ((b & 0x7f) === 0x7f) b ^= 1; bytes[i] = b; }
  const S = (E * R / rp) * Math.ceil(rp / br) * Math.ceil(C / bc);
  const scale = Float32Array.from({ length: S }, () => rng.uniform(0.5, 2) / 448 / Math.sqrt(C));
  return { shape: [E, R, C], dtype: 'fp8', fp8: { bytes, scale, rp, br, bc } };
}

type Dt = 'f32' | 'bf16' | 'fp8';

function experts(E: number, I: number, C: number, dt: Dt, rng: Prng, bc = 128, downAll = false) {
  if (dt === 'fp8') return { gu: fp8Weight(E, 2 * I, C, I, rng, 128, bc), down: fp8Weight(E, C, I, downAll ? E * C : C, rng, 128, bc) };
  const gu = randn(E * 2 * I * C, rng, 1 / Math.sqrt(C)), down = randn(E * C * I, rng, 1 / Math.sqrt(I));
  return { gu: hostWeight(gu, [E, 2 * I, C], dt), down: hostWeight(down, [E, C, I], dt) };
}

async function withKernel<T>(k: string, f: () => Promise<T>): Promise<T> {
  const old = process.env.FLA_KERNEL_MOE_EXPERTS;
  process.env.FLA_KERNEL_MOE_EXPERTS = k;
  try { return await f(); } finally { if (old === undefined) delete process.env.FLA_KERNEL_MOE_EXPERTS; else process.env.FLA_KERNEL_MOE_EXPERTS = old; }
}

describe.skipIf(!HAS_GPU)('moe_topk', () => {
  for (const [N, E, K, norm, shared] of [[70, 4, 2, true, false], [9, 64, 8, false, true], [3, 512, 10, true, true], [5, 7, 7, true, false], [4, 5, 2, true, true], [3, 300, 9, false, false], [4, 100, 20, true, true]] as const) {
    test(`N=${N} E=${E} top-${K} norm=${norm}${shared ? ' + shared gate' : ''}, tied rows`, async () => {
      const what = `moe_topk N=${N} E=${E} K=${K} ${norm} ${shared}`, rng = prng(what);
      const routed = routerLogits(N, E, rng), gates = randn(N, rng, 3), LW = E + (shared ? 1 : 0), SW = selCols(K, shared);
      const logits = new Float32Array(N * LW);
      for (let r = 0; r < N; r++) { logits.set(routed.subarray(r * E, (r + 1) * E), r * LW); if (shared) logits[r * LW + E] = gates[r]!; }
      const body = async (io: Io) => {
        const lt = io.o.act('logits', LW), sel = io.o.act('sel', SW);
        io.put(lt, logits); io.put(sel);
        await moeTopk(io.o, lt, sel, K, norm, shared);
        return { sel };
      };
      const want = await checkBoth(simpleStep(N), {}, body, { seed: rng, what });
      // each variant: the same experts in the same order, weights within 1e-6 (checkBoth's tolerance scales with the indices);
      // the subgroup one with its per-subgroup lists (top-k ≤ 16, the default) and with a barrier per round
      for (const [kernel, route] of [['subgroup', 'lists'], ['subgroup', 'rounds'], ['wg', 'lists']]) {
        process.env.FLA_KERNEL_MOE_TOPK = kernel;
        process.env.FLA_MOE_ROUTE = route;
        try {
          const got = (await runOn(gpuBackend(), 'gpu', simpleStep(N), {}, body)).sel!.data, w = want.sel!.data;
          for (let r = 0; r < N; r++) {
            expect(Array.from(got.subarray(r * SW, r * SW + K))).toEqual(Array.from(w.subarray(r * SW, r * SW + K)));
            for (let j = K; j < SW; j++) expect(Math.abs(got[r * SW + j]! - w[r * SW + j]!)).toBeLessThan(1e-6);
          }
        } finally { delete process.env.FLA_KERNEL_MOE_TOPK; delete process.env.FLA_MOE_ROUTE; }
      }
      const sel = want.sel!.data;
      // the compact selection equals the dense router's non-zero weights
      const dense = new Float32Array(N * E);
      moeRouteRef(routed, dense, N, E, K, norm);
      for (let r = 0; r < N; r++) {
        for (let j = 0; j < K; j++) {
          const e = sel[r * SW + j]!;
          expect(Math.abs(dense[r * E + e]! - sel[r * SW + K + j]!)).toBeLessThan(1e-6);
        }
        if (shared) expect(Math.abs(sel[r * SW + 2 * K]! - 1 / (1 + Math.exp(-gates[r]!)))).toBeLessThan(1e-6);
      }
      if (N > 1) expect(Array.from(sel.subarray(0, K))).toEqual(Array.from({ length: K }, (_, j) => j));   // all tied: 0 … K−1
    });
  }
});

type Kern = 'gemv' | 'gemv_wg' | 'grouped';
interface Case { N: number; E: number; K: number; C: number; I: number; dt: Dt; kernel: Kern; parts?: number; shared?: { I: number; dt: Dt }; norm?: boolean; bc?: number; downAll?: boolean; route?: boolean }

const CASES: Case[] = [
  { N: 1, E: 5, K: 2, C: 68, I: 44, dt: 'f32', kernel: 'gemv' },
  { N: 2, E: 3, K: 2, C: 24, I: 12, dt: 'f32', kernel: 'gemv', shared: { I: 8, dt: 'f32' } },   // 4 lanes per row: subgroup shuffles
  { N: 3, E: 33, K: 3, C: 132, I: 36, dt: 'bf16', kernel: 'gemv' },
  { N: 7, E: 9, K: 9, C: 68, I: 20, dt: 'f32', kernel: 'gemv', parts: 3 },
  { N: 2, E: 6, K: 2, C: 260, I: 132, dt: 'fp8', kernel: 'gemv', parts: 2 },
  { N: 1, E: 7, K: 3, C: 256, I: 128, dt: 'fp8', kernel: 'gemv', shared: { I: 96, dt: 'fp8' } },
  { N: 3, E: 7, K: 3, C: 256, I: 128, dt: 'fp8', kernel: 'gemv', shared: { I: 96, dt: 'fp8' }, norm: true },
  { N: 2, E: 5, K: 2, C: 192, I: 96, dt: 'fp8', kernel: 'gemv', bc: 48 },   // 3 units per scale block: no shift
  { N: 2, E: 5, K: 3, C: 256, I: 64, dt: 'fp8', kernel: 'gemv', downAll: true, shared: { I: 64, dt: 'fp8' } },   // down's scale rows over all experts
  { N: 2, E: 5, K: 2, C: 132, I: 36, dt: 'bf16', kernel: 'gemv_wg', norm: true },
  { N: 5, E: 9, K: 4, C: 136, I: 40, dt: 'bf16', kernel: 'gemv', shared: { I: 56, dt: 'bf16' } },
  { N: 3, E: 6, K: 2, C: 264, I: 132, dt: 'fp8', kernel: 'gemv', parts: 2, shared: { I: 36, dt: 'bf16' } },
  { N: 8, E: 4, K: 2, C: 128, I: 64, dt: 'bf16', kernel: 'gemv_wg', shared: { I: 96, dt: 'bf16' } },
  { N: 3, E: 33, K: 3, C: 132, I: 36, dt: 'f32', kernel: 'gemv_wg' },
  { N: 2, E: 6, K: 2, C: 256, I: 144, dt: 'fp8', kernel: 'gemv_wg', shared: { I: 128, dt: 'fp8' } },
  { N: 67, E: 5, K: 2, C: 68, I: 44, dt: 'f32', kernel: 'grouped' },
  { N: 130, E: 33, K: 3, C: 132, I: 36, dt: 'bf16', kernel: 'grouped' },
  { N: 9, E: 64, K: 4, C: 64, I: 128, dt: 'bf16', kernel: 'grouped', parts: 3 },
  { N: 70, E: 6, K: 2, C: 260, I: 132, dt: 'fp8', kernel: 'grouped', parts: 2 },
  { N: 69, E: 7, K: 3, C: 136, I: 40, dt: 'bf16', kernel: 'grouped', shared: { I: 56, dt: 'bf16' } },
  { N: 13, E: 7, K: 3, C: 136, I: 40, dt: 'bf16', kernel: 'grouped', shared: { I: 56, dt: 'bf16' }, norm: true },
  { N: 11, E: 6, K: 2, C: 256, I: 128, dt: 'fp8', kernel: 'grouped', shared: { I: 96, dt: 'fp8' } },
  // the op routing itself from the logits (gemv: the top-k in moe_gu's and moe_down's prologue; else moe_topk first)
  { N: 3, E: 7, K: 3, C: 256, I: 128, dt: 'fp8', kernel: 'gemv', shared: { I: 96, dt: 'fp8' }, norm: true, route: true },
  { N: 3, E: 33, K: 3, C: 132, I: 36, dt: 'bf16', kernel: 'gemv', route: true },
  { N: 2, E: 300, K: 10, C: 64, I: 32, dt: 'f32', kernel: 'gemv', shared: { I: 32, dt: 'f32' }, route: true },
  { N: 7, E: 9, K: 9, C: 68, I: 20, dt: 'f32', kernel: 'gemv', parts: 3, route: true },
  { N: 2, E: 6, K: 2, C: 256, I: 144, dt: 'fp8', kernel: 'gemv_wg', shared: { I: 128, dt: 'fp8' }, route: true },
  { N: 13, E: 7, K: 3, C: 136, I: 40, dt: 'bf16', kernel: 'grouped', shared: { I: 56, dt: 'bf16' }, norm: true, route: true },
];

/** A shared expert's gate, up [I, C] and down [C, I] host weights. */
function sharedWeights(I: number, C: number, dt: Dt, rng: Prng) {
  if (dt === 'fp8') return { gate: fp8Weight(1, I, C, I, rng), up: fp8Weight(1, I, C, I, rng), down: fp8Weight(1, C, I, C, rng) };
  const m = (R: number, Cc: number) => hostWeight(randn(R * Cc, rng, 1 / Math.sqrt(Cc)), [R, Cc], dt);
  return { gate: m(I, C), up: m(I, C), down: m(C, I) };
}
const as2d = (w: HostWeight): HostWeight => ({ ...w, shape: w.shape.slice(-2) });

describe.skipIf(!HAS_GPU)('moe_experts', () => {
  for (const c of CASES) {
    const name = `${c.route ? 'routing itself, ' : ''}${c.kernel} ${c.dt} N=${c.N} E=${c.E} top-${c.K} C=${c.C} I=${c.I}${c.parts ? ` in ${c.parts} parts` : ''}${c.shared ? ` + shared ${c.shared.dt} I=${c.shared.I}` : ''}${c.norm ? ', RMSNorm in the prologue' : ''}${c.bc ? `, blocks 128×${c.bc}` : ''}${c.downAll ? ', down scales over all experts' : ''}`;
    test(`${name}: GPU = reference = dense formula${c.shared ? ' = unfused ops' : ''}`, () => withKernel(c.kernel, async () => {
      const rng = prng(name);
      const { N, E, K, C, I } = c, hasSh = c.shared !== undefined, LW = E + (hasSh ? 1 : 0), SW = selCols(K, hasSh);
      const routed = routerLogits(N, E, rng), gates = randn(N, rng, 2), h = randn(N * C, rng), y0 = randn(N * C, rng);
      const logits = new Float32Array(N * LW);
      for (let r = 0; r < N; r++) { logits.set(routed.subarray(r * E, (r + 1) * E), r * LW); if (hasSh) logits[r * LW + E] = gates[r]!; }
      const { gu, down } = experts(E, I, C, c.dt, rng, c.bc, c.downAll);
      const sw = c.shared ? sharedWeights(c.shared.I, C, c.shared.dt, rng) : null, Is = c.shared?.I ?? 0;
      const gn = Float32Array.from(randn(C, rng, 0.3), v => 1 + v), eps = 1e-6;
      // with the norm, the experts read RMSNorm(h)·gn
      const hn = h.slice();
      if (c.norm) rmsNormRef(h, gn, hn, N, C, { eps });
      const perBytes = 2 * I * C * (c.dt === 'f32' ? 4 : c.dt === 'fp8' ? 1 : 2);
      const maxPart = c.parts ? Math.ceil(E / c.parts) * perBytes : Infinity;
      const want = await checkBoth(simpleStep(N), {}, async io => {
        const lt = io.o.act('logits', LW), sel = io.o.act('sel', SW), ht = io.o.act('h', C), y = io.o.act('y', C);
        io.put(lt, logits); io.put(sel); io.put(ht, h); io.put(y, y0);
        const w = expertWeights(io.o, 'experts', gu, down, E, I, C, maxPart);
        if (io.kind === 'gpu' && c.parts) expect(w.gu.length).toBe(c.parts);
        if (!c.route) await moeTopk(io.o, lt, sel, K, true, hasSh);
        const sh = sw ? sharedExpert(io.o, 'shared', stackRows([as2d(sw.gate), as2d(sw.up)], [2 * Is, C]), as2d(sw.down), Is, C) : null;
        const norm = c.norm ? { w: io.weight('gn', hostWeight(gn, [C]), false), eps, h: io.o.act('hn', C) } : null;
        await moeExperts(io.o, ht, sel, w, y, K, sh, norm, c.route ? { logits: lt, normTopk: true } : null);
        if (c.route) await moeTopk(io.o, lt, sel, K, true, hasSh);   // (the unfused composition below reads it)
        if (!sw) return { y } as Record<string, Tensor>;
        if (norm) await rmsNorm(io.o, ht, norm.w, norm.h, { eps });   // the unfused path reads the normed rows
        const hin = norm ? norm.h : ht;
        // the unfused composition: routed experts alone, then the shared expert op by op
        const yu = io.o.act('yu', C), g = io.o.act('g', Is), u = io.o.act('u', Is), gu2 = io.o.act('gu', Is), gs = io.o.act('gs', Is);
        io.put(yu, y0);
        const wg = io.weight('sg', as2d(sw.gate)), wu = io.weight('su', as2d(sw.up)), wd = io.weight('sd', as2d(sw.down));
        const sel2 = io.o.act('sel2', 2 * K), lt2 = io.o.act('logits2', E);
        io.put(lt2, routed); io.put(sel2);
        await moeTopk(io.o, lt2, sel2, K, true);
        await moeExperts(io.o, hin, sel2, w, yu, K);
        await matmul(io.o, hin, wg, null, 'none', g);
        await matmul(io.o, hin, wu, null, 'none', u);
        await siluMul(io.o, g, u, gu2);
        await mul(io.o, gu2, sel, gs, { col: 2 * K });
        await matmul(io.o, gs, wd, null, 'none', yu, true);
        return { y, yu };
      }, { seed: rng, what: name });
      // the dense formula: all experts, dense router weights (+ the shared expert at its gate)
      const f = (w: HostWeight, R: number, Cc: number) => w.fp8 ? dequantFp8(w.fp8, R, Cc) : w.f32 ?? bf16(w.bits16!);
      const dense = new Float32Array(N * E), yd = y0.slice();
      moeRouteRef(routed, dense, N, E, K, true);
      moeDenseRef(hn, dense, f(gu, E * 2 * I, C), f(down, E * C, I), yd, N, E, C, I);
      if (sw) {
        const sgu = new Float32Array(2 * Is * C);
        sgu.set(f(sw.gate, Is, C)); sgu.set(f(sw.up, Is, C), Is * C);
        const one = new Float32Array(N);
        for (let t = 0; t < N; t++) one[t] = 1 / (1 + Math.exp(-gates[t]!));
        moeDenseRef(hn, one, sgu, f(sw.down, C, Is), yd, N, 1, C, Is);
        expectClose(want.yu!.data, want.y!.data, { rtol: 1e-5, what: `${name} fused reference vs unfused ops`, seed: rng });
      }
      expectClose(want.y!.data, yd, { rtol: 1e-5, what: `${name} reference vs dense`, seed: rng });
    }), 120_000);
  }
});

function bf16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length), u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
  return out;
}
