// wkv7 op wrapper (kernels/rwkv7/wkv7_recurrent.wgsl): the RWKV7 time-mix core, recurrent over each sequence.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import source from './wkv7_recurrent.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'meta', 'proj', 'vfirst', 'vmix', 'params', 'state', 'y'] as const;

export interface Wkv7Args {
  proj: View; vfirst: View; vmix: View; params: View; state: View; y: View;
  C: number; D: number; first: boolean; fuseNorm: boolean; gnEps: number;
}

export function build(gpu: Gpu, s: StepCtx, a: Wkv7Args): Promise<Dispatch> {
  if (a.C % a.D !== 0 || a.D > gpu.maxInvocations || (a.D & (a.D - 1)) !== 0)
    throw new ShapeError(`wkv7: head dim ${a.D} must be a power of two ≤ ${gpu.maxInvocations} dividing C=${a.C}`);
  return dispatch(gpu, {
    label: 'wkv7_recurrent', source,
    defines: { D: a.D, FIRST: a.first, FUSE_NORM: a.fuseNorm },
  }, [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.proj), binding(a.vfirst), binding(a.vmix), binding(a.params), binding(a.state), binding(a.y),
    { buffer: gpu.uniform(new Float32Array([a.C, a.gnEps])) }],
  [a.C / a.D, s.b, 1]);
}

export function cost(N: number, C: number, D: number) {
  return { flops: N * C * D * 8, bytes: 4 * N * C * 10 };
}
