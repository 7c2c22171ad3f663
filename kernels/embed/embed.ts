// embed and gather_rows op wrappers (kernels/embed/*.wgsl).
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, weightDefines, type StepCtx, type View, type WeightDtype } from '../../src/gpu/launch.ts';
import embedSrc from './embed.wgsl' with { type: 'text' };
import gatherSrc from './gather_rows.wgsl' with { type: 'text' };
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { embedRef, gatherRowsRef } from './embed.ref.ts';

export const BINDINGS = ['step', 'meta', 'W', 'x'] as const;
export const GATHER_BINDINGS = ['step', 'meta', 'x', 'y'] as const;

export function build(gpu: Gpu, s: StepCtx, a: { table: View; wdtype: WeightDtype; x: View; C: number }): Promise<Dispatch> {
  return dispatch(gpu, { label: 'embed', source: embedSrc, defines: weightDefines(a.wdtype) },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.table), binding(a.x), { buffer: gpu.uniform(new Uint32Array([a.C])) }], grid(Math.ceil(s.n * a.C / 2 / 64)));
}

export function buildGather(gpu: Gpu, s: StepCtx, a: { x: View; y: View; C: number }): Promise<Dispatch> {
  return dispatch(gpu, { label: 'gather_rows', source: gatherSrc },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.x), binding(a.y), { buffer: gpu.uniform(new Uint32Array([a.C])) }], grid(Math.ceil(s.k * a.C / 64)));
}

/** out[t] = table[ids[t]] for the step's tokens. */
export async function embed(o: Backend, table: Weight, out: Tensor): Promise<void> {
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, { table: o.weightView(table), wdtype: o.weightDtype(table), x: o.view(out), C: out.cols }), { flops: 0, bytes: (o.weightDtype(table) === 'f32' ? 8 : 6) * o.step.n * out.cols });
    return;
  }
  const c = o as CpuBackend;
  embedRef(c.step.ids, c.weightData(table), c.data(out), out.cols);
}

/** out[j] = x[keep[j]]: the rows whose logits are kept ('n' rows → 'k' rows). */
export async function gatherKept(o: Backend, x: Tensor, out: Tensor): Promise<void> {
  if (o instanceof GpuBackend) {
    o.push(await buildGather(o.gpu, o.step, { x: o.view(x), y: o.view(out), C: x.cols }), { flops: 0, bytes: 8 * o.step.k * x.cols });
    return;
  }
  const c = o as CpuBackend;
  gatherRowsRef(c.data(x), c.step.keep, c.data(out), x.cols);
}
