// Sparse MoE kernels (kernels/moe): moe_topk against its reference, and the routed experts (moe_experts, GEMV and
// grouped variants) against the CPU reference and against the dense formula (every expert over every token, weight 0
// where not chosen, with the dense router moe_route). Odd token / expert / width counts straddling the 64-row tiles,
// experts no token picks, rows whose top-k ties (lower index wins), f32 / bf16 / fp8 weights, and experts cut into
// several parts (one dispatch per part).
import { describe, expect, test } from 'bun:test';
import type { HostWeight } from '../../../src/backend/backend.ts';
import { moeDenseRef } from '../../../kernels/moe/moe_experts.ref.ts';
import { expertWeights, moeExperts } from '../../../kernels/moe/moe_experts.ts';
import { moeRouteRef } from '../../../kernels/moe/moe_route.ref.ts';
import { moeTopk } from '../../../kernels/moe/moe_topk.ts';
import { dequantFp8 } from '../../../src/load/safetensors.ts';
import { expectClose, prng, randn, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, simpleStep } from './harness.ts';

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

function experts(E: number, I: number, C: number, dt: Dt, rng: Prng) {
  if (dt === 'fp8') return { gu: fp8Weight(E, 2 * I, C, I, rng), down: fp8Weight(E, C, I, C, rng) };
  const gu = randn(E * 2 * I * C, rng, 1 / Math.sqrt(C)), down = randn(E * C * I, rng, 1 / Math.sqrt(I));
  return { gu: hostWeight(gu, [E, 2 * I, C], dt), down: hostWeight(down, [E, C, I], dt) };
}

async function withKernel<T>(k: string, f: () => Promise<T>): Promise<T> {
  const old = process.env.FLA_KERNEL_MOE_EXPERTS;
  process.env.FLA_KERNEL_MOE_EXPERTS = k;
  try { return await f(); } finally { if (old === undefined) delete process.env.FLA_KERNEL_MOE_EXPERTS; else process.env.FLA_KERNEL_MOE_EXPERTS = old; }
}

describe.skipIf(!HAS_GPU)('moe_topk', () => {
  for (const [N, E, K, norm] of [[70, 4, 2, true], [9, 64, 8, false], [3, 512, 10, true], [5, 7, 7, true]] as const) {
    test(`N=${N} E=${E} top-${K} norm=${norm}, tied rows`, async () => {
      const what = `moe_topk N=${N} E=${E} K=${K} ${norm}`, rng = prng(what);
      const logits = routerLogits(N, E, rng);
      const want = await checkBoth(simpleStep(N), {}, async io => {
        const lt = io.o.act('logits', E), sel = io.o.act('sel', 2 * K);
        io.put(lt, logits); io.put(sel);
        await moeTopk(io.o, lt, sel, K, norm);
        return { sel };
      }, { seed: rng, what });
      const sel = want.sel!.data;
      // the compact selection equals the dense router's non-zero weights
      const dense = new Float32Array(N * E);
      moeRouteRef(logits, dense, N, E, K, norm);
      for (let r = 0; r < N; r++) for (let j = 0; j < K; j++) {
        const e = sel[r * 2 * K + j]!;
        expect(Math.abs(dense[r * E + e]! - sel[r * 2 * K + K + j]!)).toBeLessThan(1e-6);
      }
      if (N > 1) expect(Array.from(sel.subarray(0, K))).toEqual(Array.from({ length: K }, (_, j) => j));   // all tied: 0 … K−1
    });
  }
});

interface Case { N: number; E: number; K: number; C: number; I: number; dt: Dt; kernel: 'gemv' | 'grouped'; parts?: number }

const CASES: Case[] = [
  { N: 1, E: 5, K: 2, C: 68, I: 44, dt: 'f32', kernel: 'gemv' },
  { N: 3, E: 33, K: 3, C: 132, I: 36, dt: 'bf16', kernel: 'gemv' },
  { N: 7, E: 9, K: 9, C: 68, I: 20, dt: 'f32', kernel: 'gemv', parts: 3 },
  { N: 2, E: 6, K: 2, C: 260, I: 132, dt: 'fp8', kernel: 'gemv', parts: 2 },
  { N: 67, E: 5, K: 2, C: 68, I: 44, dt: 'f32', kernel: 'grouped' },
  { N: 130, E: 33, K: 3, C: 132, I: 36, dt: 'bf16', kernel: 'grouped' },
  { N: 9, E: 64, K: 4, C: 64, I: 128, dt: 'bf16', kernel: 'grouped', parts: 3 },
  { N: 70, E: 6, K: 2, C: 260, I: 132, dt: 'fp8', kernel: 'grouped', parts: 2 },
];

describe.skipIf(!HAS_GPU)('moe_experts', () => {
  for (const c of CASES) {
    const name = `${c.kernel} ${c.dt} N=${c.N} E=${c.E} top-${c.K} C=${c.C} I=${c.I}${c.parts ? ` in ${c.parts} parts` : ''}`;
    test(`${name}: GPU = reference = dense formula`, () => withKernel(c.kernel, async () => {
      const rng = prng(name);
      const { N, E, K, C, I } = c;
      const logits = routerLogits(N, E, rng), h = randn(N * C, rng), y0 = randn(N * C, rng);
      const { gu, down } = experts(E, I, C, c.dt, rng);
      const perBytes = 2 * I * C * (c.dt === 'f32' ? 4 : c.dt === 'fp8' ? 1 : 2);
      const maxPart = c.parts ? Math.ceil(E / c.parts) * perBytes : Infinity;
      const want = await checkBoth(simpleStep(N), {}, async io => {
        const lt = io.o.act('logits', E), sel = io.o.act('sel', 2 * K), ht = io.o.act('h', C), y = io.o.act('y', C);
        io.put(lt, logits); io.put(sel); io.put(ht, h); io.put(y, y0);
        const w = expertWeights(io.o, 'experts', gu, down, E, I, C, maxPart);
        if (io.kind === 'gpu' && c.parts) expect(w.gu.length).toBe(c.parts);
        await moeTopk(io.o, lt, sel, K, true);
        await moeExperts(io.o, ht, sel, w, y);
        return { y };
      }, { seed: rng, what: name });
      // the dense formula: all experts, dense router weights
      const f = (w: HostWeight, R: number, Cc: number) => w.fp8 ? dequantFp8(w.fp8, E * R, Cc) : w.f32 ?? bf16(w.bits16!);
      const dense = new Float32Array(N * E), yd = y0.slice();
      moeRouteRef(logits, dense, N, E, K, true);
      moeDenseRef(h, dense, f(gu, 2 * I, C), f(down, C, I), yd, N, E, C, I);
      expectClose(want.y!.data, yd, { rtol: 1e-5, what: `${name} reference vs dense`, seed: rng });
    }), 60_000);
  }
});

function bf16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length), u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
  return out;
}
