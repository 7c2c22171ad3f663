// wkv7_lora op: the RWKV7 time-mix core with its LoRA up-projections and gate math. 'fused' (kernels/rwkv7/
// wkv7_lora.wgsl): one dispatch, the up-projections in the recurrence's prologue, token by token; 'split': lora_up
// (every token in parallel: the up-projections into proj's w, a, g planes and vmix) then wkv7_recurrent, for steps
// with long sequences, whose recurrence would otherwise also carry the up-projections serially; 'chunk': lora_up then
// the wkv7 op's chunked prefill (wkv7_chunk.ts), where that op would choose it (or FLA_KERNEL_WKV7=chunk forces it).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { f32, grid, kernel, op, scratch, u32, weightDefines, type Ctx, type Launch } from '../lib.ts';
import { cost as wkv7Cost, wkv7Op, type Wkv7Op } from './wkv7.ts';
import { chunkFits, chunkVariant } from './wkv7_chunk.ts';
import source from './wkv7_lora.wgsl' with { type: 'text' };
import upSource from './lora_up.wgsl' with { type: 'text' };
import { wkv7LoraRef, type LoraRanks } from './wkv7_lora.ref.ts';

export const KERNEL = kernel('wkv7_lora', source, ['step', 'stepmeta', 'proj', 'lora', 'W', 'params', 'vfirst', 'state', 'y', 'dims']);
export const UP_KERNEL = kernel('lora_up', upSource, ['step', 'lora', 'W', 'params', 'proj', 'vmix', 'dims']);

/** Ways the fused prologue's dot products are split (workgroups of KS·D threads, at most 256). */
export function splits(D: number, maxInvocations: number): number {
  return Math.max(1, Math.min(4, Math.floor(Math.min(256, maxInvocations) / D)));
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
  return {
    kernel: UP_KERNEL, grid: grid(Math.ceil(Math.ceil(c.step.n / UP_TB) * C / 64)),
    defines: { R, RG: a.ranks.g, FIRST: a.ranks.v === 0, ...weightDefines(a.wu.dtype as 'f32' | 'bf16' | 'f16') },
    cost: { flops: 2 * c.step.n * R * C, bytes: Math.ceil(c.step.n / UP_TB) * R * C * (a.wu.dtype === 'f32' ? 4 : 2) + 4 * c.step.n * (R + 4 * C) },
    bind: { lora: a.lora, W: a.wu, params: a.params, proj: a.proj, vmix: scratch('vmix'), dims: u32(C, a.ranks.w, a.ranks.a) },
  };
}

/** Past FUSED_MAX_LEN: 'chunk' where the wkv7 op would chunk (FLA_KERNEL_WKV7 forces either way), else 'split'. */
function longVariant(c: Ctx, a: Wkv7LoraArgs): 'split' | 'chunk' {
  const forced = knob('FLA_KERNEL_WKV7'), w = { D: a.D } as Wkv7Op;
  if (forced) return forced === 'chunk' && chunkFits(w, c) ? 'chunk' : 'split';
  return wkv7Op.select(c, w) === 'chunk' ? 'chunk' : 'split';
}

export const wkv7LoraOp = op<Wkv7LoraArgs>({
  name: 'wkv7_lora',
  check(a) {
    const C = a.out.cols, R = sumRanks(a.ranks);
    if (C % a.D !== 0 || (a.D & (a.D - 1)) !== 0) throw new ShapeError(`wkv7_lora: head dim ${a.D} must be a power of two dividing C=${C}`);
    if (a.lora.cols !== R || a.wu.shape[0] !== R || a.wu.shape[1] !== C || a.params.shape[0] !== 8 || a.params.shape[1] !== C || a.proj.planes !== 6 || a.proj.cols !== C)
      throw new ShapeError(`wkv7_lora: lora ${a.lora.cols} columns, up-projections [${a.wu.shape.join(', ')}], params [${a.params.shape.join(', ')}] for ranks ${R} and C=${C}`);
    if (a.wu.dtype === 'fp8' || C % 2 !== 0) throw new ShapeError(`wkv7_lora: up-projections must be f32, bf16 or f16 with C even`);
  },
  /** 'fused' while every sequence of the step has ≤ FUSED_MAX_LEN tokens (decode), else 'chunk' or 'split' (longVariant). */
  select: (c, a) => (c.step.maxLen <= FUSED_MAX_LEN ? 'fused' : longVariant(c, a)),
  variants: {
    fused: {
      launches: (a, c) => {
        const C = a.out.cols, R = sumRanks(a.ranks);
        if (a.D > c.adapter.maxInvocations) throw new ShapeError(`wkv7_lora: head dim ${a.D} must be ≤ ${c.adapter.maxInvocations}`);
        const base = wkv7Cost(c.step.n, C, a.D);
        return [{
          kernel: KERNEL, grid: [C / a.D, c.step.b, 1],
          defines: { D: a.D, KS: splits(a.D, c.adapter.maxInvocations), R, RG: a.ranks.g, FIRST: a.ranks.v === 0, FUSE_NORM: a.fuseNorm, ...weightDefines(a.wu.dtype as 'f32' | 'bf16' | 'f16') },
          cost: { flops: base.flops + 2 * c.step.n * R * C, bytes: base.bytes + 8 * c.step.b * C * a.D + c.step.b * R * C * (a.wu.dtype === 'f32' ? 4 : 2) },
          bind: { proj: a.proj, lora: a.lora, W: a.wu, params: a.params, vfirst: a.vfirst, state: a.state, y: a.out, dims: f32(C, a.gnEps, a.ranks.w, a.ranks.a) },
        }];
      },
    },
    split: {
      scratch: a => ({ vmix: { cols: a.out.cols } }),
      launches: (a, c) => [upLaunch(a, c), ...wkv7Op.variants.recurrent!.launches(core(a), c)],
    },
    chunk: {
      supports: (a, c) => chunkFits(core(a), c),
      scratch: (a, c) => ({ vmix: { cols: a.out.cols }, ...chunkVariant.scratch!(core(a), c) }),
      launches: (a, c) => [upLaunch(a, c), ...chunkVariant.launches(core(a), c)],
    },
  },
  ref: (a, h) => wkv7LoraRef(h.data(a.proj), h.data(a.lora), h.data(a.wu), h.data(a.params), h.data(a.vfirst), h.data(a.state), h.data(a.out),
    h.step.cursors, { C: a.out.cols, D: a.D, cap: h.cap(a.proj), ranks: a.ranks, fuseNorm: a.fuseNorm, gnEps: a.gnEps }),
});

/** The RWKV7 time-mix core of one layer with its LoRA up-projections (ranks.v 0 = layer 0, which writes vfirst). */
export function wkv7Lora(o: Backend, a: Wkv7LoraArgs): Promise<void> {
  return o.run(wkv7LoraOp, a);
}
