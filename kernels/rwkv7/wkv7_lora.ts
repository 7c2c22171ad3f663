// wkv7_lora op: the RWKV7 time-mix core with its LoRA up-projections and gate math. 'fused' (kernels/rwkv7/
// wkv7_lora.wgsl): one dispatch, the up-projections in the recurrence's prologue, token by token; 'split': lora_up
// (every token in parallel: the up-projections into proj's w, a, g planes and vmix) then wkv7_recurrent, for steps
// with long sequences, whose recurrence would otherwise also carry the up-projections serially.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { f32, grid, kernel, ONLY, op, scratch, u32, weightDefines } from '../lib.ts';
import { cost as wkv7Cost, wkv7Op } from './wkv7.ts';
import source from './wkv7_lora.wgsl' with { type: 'text' };
import upSource from './lora_up.wgsl' with { type: 'text' };
import { wkv7LoraRef, type LoraRanks } from './wkv7_lora.ref.ts';

export const KERNEL = kernel('wkv7_lora', source, ['step', 'stepmeta', 'proj', 'lora', 'W', 'params', 'vfirst', 'state', 'y', 'dims']);
export const UP_KERNEL = kernel('lora_up', upSource, ['step', 'lora', 'W', 'params', 'proj', 'vmix', 'dims']);

/** Ways the fused prologue's dot products are split (workgroups of KS·D threads, at most 256). */
export function splits(D: number, maxInvocations: number): number {
  return Math.max(1, Math.min(4, Math.floor(Math.min(256, maxInvocations) / D)));
}

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

export const wkv7LoraOp = op<Wkv7LoraArgs>({
  name: 'wkv7_lora',
  check(a) {
    const C = a.out.cols, R = sumRanks(a.ranks);
    if (C % a.D !== 0 || (a.D & (a.D - 1)) !== 0) throw new ShapeError(`wkv7_lora: head dim ${a.D} must be a power of two dividing C=${C}`);
    if (a.lora.cols !== R || a.wu.shape[0] !== R || a.wu.shape[1] !== C || a.params.shape[0] !== 8 || a.params.shape[1] !== C || a.proj.planes !== 6 || a.proj.cols !== C)
      throw new ShapeError(`wkv7_lora: lora ${a.lora.cols} columns, up-projections [${a.wu.shape.join(', ')}], params [${a.params.shape.join(', ')}] for ranks ${R} and C=${C}`);
    if (a.wu.dtype === 'fp8' || C % 2 !== 0) throw new ShapeError(`wkv7_lora: up-projections must be f32, bf16 or f16 with C even`);
  },
  /** 'fused' while every sequence of the step has ≤ FUSED_MAX_LEN tokens (decode), else 'split'. */
  select: c => (c.step.maxLen <= FUSED_MAX_LEN ? 'fused' : 'split'),
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
      launches: (a, c) => {
        const C = a.out.cols, R = sumRanks(a.ranks), first = a.ranks.v === 0;
        const up = {
          kernel: UP_KERNEL, grid: grid(Math.ceil(c.step.n * C / 64)),
          defines: { R, RG: a.ranks.g, FIRST: first, ...weightDefines(a.wu.dtype as 'f32' | 'bf16' | 'f16') },
          cost: { flops: 2 * c.step.n * R * C, bytes: R * C * (a.wu.dtype === 'f32' ? 4 : 2) + 4 * c.step.n * (R + 4 * C) },
          bind: { lora: a.lora, W: a.wu, params: a.params, proj: a.proj, vmix: scratch('vmix'), dims: u32(C, a.ranks.w, a.ranks.a) },
        };
        return [up, ...wkv7Op.variants[ONLY]!.launches({ proj: a.proj, vfirst: a.vfirst, vmix: first ? null : scratch('vmix') as never, params: a.params, state: a.state, out: a.out, D: a.D, fuseNorm: a.fuseNorm, gnEps: a.gnEps }, c)];
      },
    },
  },
  ref: (a, h) => wkv7LoraRef(h.data(a.proj), h.data(a.lora), h.data(a.wu), h.data(a.params), h.data(a.vfirst), h.data(a.state), h.data(a.out),
    h.step.cursors, { C: a.out.cols, D: a.D, cap: h.cap(a.proj), ranks: a.ranks, fuseNorm: a.fuseNorm, gnEps: a.gnEps }),
});

/** The RWKV7 time-mix core of one layer with its LoRA up-projections (ranks.v 0 = layer 0, which writes vfirst). */
export function wkv7Lora(o: Backend, a: Wkv7LoraArgs): Promise<void> {
  return o.run(wkv7LoraOp, a);
}
