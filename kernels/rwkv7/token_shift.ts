// token_shift and shift_store ops (kernels/rwkv7/token_shift.wgsl, shift_store.wgsl).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { grid, kernel, only, ONLY, op, u32 } from '../lib.ts';
import shiftSrc from './token_shift.wgsl' with { type: 'text' };
import storeSrc from './shift_store.wgsl' with { type: 'text' };
import { shiftStoreRef, tokenShiftRef } from './token_shift.ref.ts';

export const KERNEL = kernel('token_shift', shiftSrc, ['step', 'stepmeta', 'h', 'state', 'mix', 'out', 'dims']);
export const STORE_KERNEL = kernel('shift_store', storeSrc, ['step', 'stepmeta', 'h', 'state', 'dims']);

export interface TokenShiftArgs { h: Tensor; state: Tensor; mix: Weight; out: Tensor }

export const tokenShiftOp = op<TokenShiftArgs>({
  name: 'token_shift',
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => [{
        kernel: KERNEL, grid: grid(Math.ceil(c.step.n * a.h.cols / 64)),
        cost: { flops: 2 * a.out.planes * c.step.n * a.h.cols, bytes: 4 * (1 + a.out.planes) * c.step.n * a.h.cols },
        bind: { h: a.h, state: a.state, mix: a.mix, out: a.out, dims: u32(a.h.cols, a.out.planes) },
      }],
    },
  },
  ref: (a, h) => tokenShiftRef(h.data(a.h), h.data(a.state), h.data(a.mix), h.data(a.out), h.step.cursors, a.h.cols, a.out.planes, h.cap(a.out)),
});

export interface ShiftStoreArgs { h: Tensor; state: Tensor }

export const shiftStoreOp = op<ShiftStoreArgs>({
  name: 'shift_store',
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => [{
        kernel: STORE_KERNEL, grid: [Math.ceil(c.step.b * a.h.cols / 64), 1, 1], cost: { flops: 0, bytes: 8 * c.step.b * a.h.cols },
        bind: { h: a.h, state: a.state, dims: u32(a.h.cols) },
      }],
    },
  },
  ref: (a, h) => shiftStoreRef(h.data(a.h), h.data(a.state), h.step.cursors, a.h.cols),
});

/** out[m, t] = h[t] + (prev − h[t])·mix[m], prev = h[t−1] or the slot's shift state at a sequence start. */
export function tokenShift(o: Backend, h: Tensor, state: Tensor, mix: Weight, out: Tensor): Promise<void> {
  return o.run(tokenShiftOp, { h, state, mix, out });
}

/** state[slot] = h[last token] for each sequence of the step. */
export function shiftStore(o: Backend, h: Tensor, state: Tensor): Promise<void> {
  return o.run(shiftStoreOp, { h, state });
}
