// wkv7_lora op: the RWKV7 time-mix core with its LoRA up-projections and gate math. 'fused' (kernels/rwkv7/
// wkv7_lora.wgsl): one dispatch, the up-projections in the recurrence's prologue, token by token, their weight rows
// loaded in parallel across the workgroup (16-byte units, a batch of rows in flight per thread) and the state spread
// over P threads per column, with subgroup reductions where the adapter has them; 'fused_wg' (forced only): the same
// reducing through workgroup memory; 'split': lora_up
// (every token in parallel: the up-projections into proj's w, a, g planes and vmix) then wkv7_recurrent, for steps
// with long sequences, whose recurrence would otherwise also carry the up-projections serially; 'chunk': lora_up then
// the wkv7 op's chunked prefill (wkv7_chunk.ts), where that op would choose it (or FLA_KERNEL_WKV7=chunk forces it).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { f32, grid, kernel, op, scratch, shadersOnCpu, u32, weightDefines, type Adapter, type Ctx, type Launch } from '../lib.ts';
import { cost as wkv7Cost, wkv7Op, type Wkv7Op } from './wkv7.ts';
import { chunkFits, chunkVariant } from './wkv7_chunk.ts';
import source from './wkv7_lora.wgsl' with { type: 'text' };
import upSource from './lora_up.wgsl' with { type: 'text' };
import { wkv7LoraRef, type LoraRanks } from './wkv7_lora.ref.ts';
import { shiftStoreOp } from './token_shift.ts';
import { shiftStoreRef } from './token_shift.ref.ts';
import { partLaunches } from './compose.ts';
import { RWKV7_INCLUDES } from './includes.ts';

export const KERNEL = kernel('wkv7_lora', source, ['step', 'stepmeta', 'proj', 'lora', 'W', 'params', 'vfirst', 'state', 'y', 'shift', 'dims']);
export const UP_KERNEL = kernel('lora_up', upSource, ['step', 'lora', 'W', 'params', 'proj', 'vmix', 'dims']);

/** The fused kernel's geometry: workgroup size, threads per column of S, elements per 16-byte weight unit, subgroups. */
export interface FusedPlan { WG: number; P: number; EPU: number; SG_RED: boolean; SGS: number; SGP: boolean }

/**
 * WG: the largest power of two ≤ 2·D, 256 and the adapter's limit (FLA_WKV7_LORA_WG instead of 2·D and 256) whose workgroup memory fits, at least D; null when
 * none does or the head's columns are not whole 16-byte units. subgroups: reduce with subgroup operations where the
 * adapter has them (subgroups of at least P lanes); SGP (with them, unless FLA_WKV7_LORA_SGP=0): the prologue's sums
 * over each subgroup's lanes first, then all four segments in one workgroup-memory pass, and four barriers a token
 * instead of sixteen (H200, rwkv7-1.5b's shape, bench/wkv7_lora_probe.ts --ab: 13.6 against 14.5 µs a dispatch at
 * batch 1, 16.1 against 17.2 at 8; an empty dispatch of it 5.0).
 */
export function fusedPlan(D: number, C: number, dtype: 'f32' | 'bf16' | 'f16', ad: Adapter, subgroups: boolean): FusedPlan | null {
  const EPU = dtype === 'f32' ? 4 : 8;
  if (D % EPU !== 0 || C % EPU !== 0) return null;
  let WG = 1;
  // two threads per column of S by default (H200, rwkv7-1.5b D 64: 128 threads tg64 518 t/s, 256 threads 461);
  // FLA_WKV7_LORA_WG: benchmarking
  const forced = knob('FLA_WKV7_LORA_WG');
  const cap = Math.min(ad.maxInvocations, forced === undefined ? Math.min(256, 2 * D) : Number(forced));
  while (WG * 2 <= cap) WG *= 2;
  for (; WG >= D; WG /= 2) {
    const P = WG / D, SGS = ad.subgroupSize;
    const SG_RED = subgroups && ad.subgroups && SGS >= P && SGS <= WG && (SGS & (SGS - 1)) === 0;
    const SGP = SG_RED && knob('FLA_WKV7_LORA_SGP') !== '0';
    const part = SGP ? 4 * (WG / Math.max(SGS, D / EPU)) * D : WG * EPU + 4 * WG;
    const bytes = 4 * (part + 7 * D) + (SG_RED ? 8 * (WG / SGS) * (SGP ? 4 : 1) : 12 * WG);
    if (bytes <= ad.maxWorkgroupStorage) return { WG, P, EPU, SG_RED, SGS: SG_RED ? SGS : 1, SGP };
  }
  return null;
}

/** Tokens each lora_up thread takes (each weight load serves them all; lora_up.wgsl's vec4 accumulators). */
const UP_TB = 4;

/** Longest sequence a step may have for 'fused' to be chosen. */
export const FUSED_MAX_LEN = 16;

/**
 * proj [6 planes, C]: r, k, v at planes 0, 2, 3 (the split path writes w, a, g into 1, 4, 5); lora [N, R] (R = the
 * ranks' sum; ranks.v 0 = layer 0, which writes vfirst); wu [R, C]: W2ᵀ, A2ᵀ, G2ᵀ, V2ᵀ stacked; params [8, C]:
 * k_k, k_a, r_k, g_norm.weight, g_norm.bias, w0, a0, v0.
 */
export interface Wkv7LoraArgs {
  proj: Tensor; lora: Tensor; wu: Weight; ranks: LoraRanks; params: Weight; vfirst: Tensor; state: Tensor; out: Tensor;
  D: number; fuseNorm: boolean; gnEps: number;
  /**
   * Store the time-mix shift state, state[slot] ← h[last token of the sequence] (after rwkv7_proj_ln), h being proj's
   * plane 4 (h: that plane's tensor).
   */
  shift?: { h: Tensor; state: Tensor } | null;
}

const sumRanks = (r: LoraRanks) => r.w + r.a + r.g + r.v;

/** The wkv7 op's arguments for the core after lora_up (vmix: lora_up's scratch; null on layer 0). */
const core = (a: Wkv7LoraArgs): Wkv7Op => ({
  proj: a.proj, vfirst: a.vfirst, vmix: a.ranks.v === 0 ? null : scratch('vmix') as never, params: a.params, state: a.state, out: a.out,
  D: a.D, fuseNorm: a.fuseNorm, gnEps: a.gnEps,
});

/** lora_up: the up-projections of every token in parallel into proj's w, a, g planes and vmix. */
function upLaunch(a: Wkv7LoraArgs, c: Ctx): Launch {
  const C = a.out.cols, R = sumRanks(a.ranks);
  if (a.lora.cols !== R) throw new ShapeError(`wkv7_lora: lora_up reads lora rows of ${R} columns, got ${a.lora.cols}`);
  return {
    kernel: UP_KERNEL, grid: grid(Math.ceil(Math.ceil(c.step.n / UP_TB) * C / 64)),
    defines: { R, RG: a.ranks.g, FIRST: a.ranks.v === 0, ...weightDefines(a.wu.dtype as 'f32' | 'bf16' | 'f16') },
    cost: { flops: 2 * c.step.n * R * C, bytes: Math.ceil(c.step.n / UP_TB) * R * C * (a.wu.dtype === 'f32' ? 4 : 2) + 4 * c.step.n * (R + 4 * C) },
    bind: { lora: a.lora, W: a.wu, params: a.params, proj: a.proj, vmix: scratch('vmix'), dims: u32(C, a.ranks.w, a.ranks.a) },
  };
}

/**
 * Rows per thread in one batch of the fused prologue's loads: the fewest batches of at most 20 rows, evened out
 * (rwkv7-1.5b's 544 rows at 128 threads are 34 a thread: two batches of 17, where batches of 16 took three round
 * trips); FLA_WKV7_LORA_KB forces it (benchmarking).
 */
function rowBatch(R: number, p: FusedPlan, ad: Adapter): number {
  const rows = Math.ceil(R / ((p.WG * p.EPU) / (p.WG / p.P)));   // R / NRG, NRG = WG / (D / EPU) = WG · EPU / D
  const forced = knob('FLA_WKV7_LORA_KB');
  if (forced !== undefined) return Number(forced);
  // a row a batch where a CPU runs the shader (lavapipe, cold Mesa cache: rwkv7-tiny's wkv7_lora JIT 260 → 137 s)
  if (shadersOnCpu(ad)) return 1;
  const batches = Math.max(1, Math.ceil(rows / 20));
  return Math.max(1, Math.ceil(rows / batches));
}

/** The fused kernel's launch (subgroups: where the adapter has them). */
export function fusedLaunch(a: Wkv7LoraArgs, c: Ctx, subgroups: boolean): Launch {
  const C = a.out.cols, R = sumRanks(a.ranks), dt = a.wu.dtype as 'f32' | 'bf16' | 'f16';
  const p = fusedPlan(a.D, C, dt, c.adapter, subgroups);
  if (!p) throw new ShapeError(`wkv7_lora: head dim ${a.D} does not fit the fused kernel on this adapter (${c.adapter.maxInvocations} invocations, ${c.adapter.maxWorkgroupStorage} bytes of workgroup memory)`);
  const base = wkv7Cost(c.step.n, C, a.D);
  return {
    kernel: KERNEL, grid: [C / a.D, c.step.b, 1],
    defines: {
      D: a.D, WG: p.WG, P: p.P, EPU: p.EPU, KB: rowBatch(R, p, c.adapter), FIRST: a.ranks.v === 0, FUSE_NORM: a.fuseNorm,
      W_F32: dt === 'f32', W_F16: dt === 'f16', SG_RED: p.SG_RED, SGS: p.SGS, SGP: p.SGP, SHIFT: !!a.shift,
    },
    cost: { flops: base.flops + 2 * c.step.n * R * C, bytes: base.bytes + 8 * c.step.b * C * a.D + c.step.b * R * C * (dt === 'f32' ? 4 : 2) },
    // without SHIFT, shift is unread (the backend's placeholder)
    bind: { proj: a.proj, lora: a.lora, W: a.wu, params: a.params, vfirst: a.vfirst, state: a.state, y: a.out, shift: a.shift?.state ?? null, dims: u32(C, new Uint32Array(new Float32Array([a.gnEps]).buffer)[0]!, R, a.lora.cols, a.ranks.w, a.ranks.a, a.ranks.g, 0) },
  };
}

/** lora rows of stride ls (≥ R) as the reference's [rows, R]. */
function loraRows(l: Float32Array, ls: number, R: number): Float32Array {
  if (ls === R) return l;
  const rows = l.length / ls, out = new Float32Array(rows * R);
  for (let t = 0; t < rows; t++) out.set(l.subarray(t * ls, t * ls + R), t * R);
  return out;
}

/** split, chunk: the shift-state store as its own dispatch (shift_store). */
const shiftLaunches = (a: Wkv7LoraArgs, c: Ctx): Launch[] => (a.shift ? partLaunches(shiftStoreOp, a.shift, c) : []);

/** Past FUSED_MAX_LEN: 'chunk' where the wkv7 op would chunk (FLA_KERNEL_WKV7 forces either way), else 'split'. */
function longVariant(c: Ctx, a: Wkv7LoraArgs): 'split' | 'chunk' {
  const forced = knob('FLA_KERNEL_WKV7'), w = { D: a.D } as Wkv7Op;
  if (forced) return forced === 'chunk' && chunkFits(w, c) ? 'chunk' : 'split';
  return wkv7Op.select(c, w) === 'chunk' ? 'chunk' : 'split';
}

export const wkv7LoraOp = op<Wkv7LoraArgs>({
  name: 'wkv7_lora',
  includes: RWKV7_INCLUDES,
  check(a) {
    const C = a.out.cols, R = sumRanks(a.ranks);
    if (C % a.D !== 0 || (a.D & (a.D - 1)) !== 0) throw new ShapeError(`wkv7_lora: head dim ${a.D} must be a power of two dividing C=${C}`);
    if (a.lora.cols < R || a.wu.shape[0] !== R || a.wu.shape[1] !== C || a.params.shape[0] !== 8 || a.params.shape[1] !== C || a.proj.planes !== 6 || a.proj.cols !== C)
      throw new ShapeError(`wkv7_lora: lora ${a.lora.cols} columns, up-projections [${a.wu.shape.join(', ')}], params [${a.params.shape.join(', ')}] for ranks ${R} and C=${C}`);
    if (a.wu.dtype === 'fp8' || C % 2 !== 0) throw new ShapeError(`wkv7_lora: up-projections must be f32, bf16 or f16 with C even`);
  },
  /** 'fused' while every sequence of the step has ≤ FUSED_MAX_LEN tokens (decode), else 'chunk' or 'split' (longVariant). */
  select: (c, a) => (c.step.maxLen <= FUSED_MAX_LEN && fusedPlan(a.D, a.out.cols, a.wu.dtype as 'f32' | 'bf16' | 'f16', c.adapter, true) ? 'fused' : longVariant(c, a)),
  variants: {
    fused: {
      supports: (a, c) => fusedPlan(a.D, a.out.cols, a.wu.dtype as 'f32' | 'bf16' | 'f16', c.adapter, true) !== null,
      launches: (a, c) => [fusedLaunch(a, c, true)],
    },
    fused_wg: {
      supports: (a, c) => fusedPlan(a.D, a.out.cols, a.wu.dtype as 'f32' | 'bf16' | 'f16', c.adapter, false) !== null,
      launches: (a, c) => [fusedLaunch(a, c, false)],
    },
    split: {
      scratch: a => ({ vmix: { cols: a.out.cols } }),
      launches: (a, c) => [upLaunch(a, c), ...wkv7Op.variants.recurrent!.launches(core(a), c), ...shiftLaunches(a, c)],
    },
    chunk: {
      supports: (a, c) => chunkFits(core(a), c),
      scratch: (a, c) => ({ vmix: { cols: a.out.cols }, ...chunkVariant.scratch!(core(a), c) }),
      launches: (a, c) => [upLaunch(a, c), ...chunkVariant.launches(core(a), c), ...shiftLaunches(a, c)],
    },
  },
  ref: (a, h) => {
    wkv7LoraRef(h.data(a.proj), loraRows(h.data(a.lora), a.lora.cols, sumRanks(a.ranks)), h.data(a.wu), h.data(a.params), h.data(a.vfirst), h.data(a.state), h.data(a.out),
      h.step.cursors, { C: a.out.cols, D: a.D, cap: h.cap(a.proj), ranks: a.ranks, fuseNorm: a.fuseNorm, gnEps: a.gnEps });
    if (a.shift) shiftStoreRef(h.data(a.shift.h), h.data(a.shift.state), h.step.cursors, a.out.cols);
  },
});

/** The RWKV7 time-mix core of one layer with its LoRA up-projections (ranks.v 0 = layer 0, which writes vfirst). */
export function wkv7Lora(o: Backend, a: Wkv7LoraArgs): Promise<void> {
  return o.run(wkv7LoraOp, a);
}
