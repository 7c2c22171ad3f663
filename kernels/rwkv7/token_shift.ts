// token_shift and shift_store op wrappers (kernels/rwkv7/token_shift.wgsl, shift_store.wgsl).
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import shiftSrc from './token_shift.wgsl' with { type: 'text' };
import storeSrc from './shift_store.wgsl' with { type: 'text' };

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
