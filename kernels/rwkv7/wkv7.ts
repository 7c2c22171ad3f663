// wkv7 op wrapper (kernels/rwkv7/wkv7_recurrent.wgsl): the RWKV7 time-mix core, recurrent over each sequence.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import source from './wkv7_recurrent.wgsl' with { type: 'text' };
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { wkv7Ref } from './wkv7.ref.ts';

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

export interface Wkv7Op { proj: Tensor; vfirst: Tensor; vmix: Tensor | null; params: Weight; state: Tensor; out: Tensor; D: number; fuseNorm: boolean; gnEps: number }

/** The RWKV7 time-mix core of one layer (vmix null = layer 0, which writes vfirst). */
export async function wkv7(o: Backend, a: Wkv7Op): Promise<void> {
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, {
      proj: o.view(a.proj), vfirst: o.view(a.vfirst), vmix: a.vmix ? o.view(a.vmix) : o.dummyView, params: o.weightView(a.params),
      state: o.view(a.state), y: o.view(a.out), C: a.out.cols, D: a.D, first: a.vmix === null, fuseNorm: a.fuseNorm, gnEps: a.gnEps,
    }), { ...cost(o.step.n, a.out.cols, a.D), bytes: cost(o.step.n, a.out.cols, a.D).bytes + 8 * o.step.b * a.out.cols * a.D });
    return;
  }
  const c = o as CpuBackend;
  wkv7Ref(c.data(a.proj), c.data(a.vfirst), a.vmix ? c.data(a.vmix) : new Float32Array(0), c.weightData(a.params), c.data(a.state), c.data(a.out),
    c.step.cursors, { C: a.out.cols, D: a.D, cap: c.capacity(a.proj), first: a.vmix === null, fuseNorm: a.fuseNorm, gnEps: a.gnEps });
}
