// token_shift and shift_store op wrappers (kernels/rwkv7/token_shift.wgsl, shift_store.wgsl).
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import shiftSrc from './token_shift.wgsl' with { type: 'text' };
import storeSrc from './shift_store.wgsl' with { type: 'text' };
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { shiftStoreRef, tokenShiftRef } from './token_shift.ref.ts';

export const BINDINGS = ['step', 'meta', 'h', 'state', 'mix', 'out'] as const;
export const STORE_BINDINGS = ['step', 'meta', 'h', 'state'] as const;

export function build(gpu: Gpu, s: StepCtx, a: { h: View; state: View; mix: View; out: View; C: number; M: number }): Promise<Dispatch> {
  return dispatch(gpu, { label: 'token_shift', source: shiftSrc },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.h), binding(a.state), binding(a.mix), binding(a.out), { buffer: gpu.uniform(new Uint32Array([a.C, a.M])) }],
    grid(Math.ceil(s.n * a.C / 64)));
}

export function buildStore(gpu: Gpu, s: StepCtx, a: { h: View; state: View; C: number }): Promise<Dispatch> {
  return dispatch(gpu, { label: 'shift_store', source: storeSrc },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.h), binding(a.state), { buffer: gpu.uniform(new Uint32Array([a.C])) }], [Math.ceil(s.b * a.C / 64), 1, 1]);
}

/** out[m, t] = h[t] + (prev − h[t])·mix[m], prev = h[t−1] or the slot's shift state at a sequence start. */
export async function tokenShift(o: Backend, h: Tensor, state: Tensor, mix: Weight, out: Tensor): Promise<void> {
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, { h: o.view(h), state: o.view(state), mix: o.weightView(mix), out: o.view(out), C: h.cols, M: out.planes }),
      { flops: 2 * out.planes * o.step.n * h.cols, bytes: 4 * (1 + out.planes) * o.step.n * h.cols });
    return;
  }
  const c = o as CpuBackend;
  tokenShiftRef(c.data(h), c.data(state), c.weightData(mix), c.data(out), c.step.cursors, h.cols, out.planes, c.capacity(out));
}

/** state[slot] = h[last token] for each sequence of the step. */
export async function shiftStore(o: Backend, h: Tensor, state: Tensor): Promise<void> {
  if (o instanceof GpuBackend) {
    o.push(await buildStore(o.gpu, o.step, { h: o.view(h), state: o.view(state), C: h.cols }), { flops: 0, bytes: 8 * o.step.b * h.cols });
    return;
  }
  const c = o as CpuBackend;
  shiftStoreRef(c.data(h), c.data(state), c.step.cursors, h.cols);
}
