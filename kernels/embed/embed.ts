// embed and gather_rows op wrappers (kernels/embed/*.wgsl).
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, weightDefines, type StepCtx, type View, type WeightDtype } from '../../src/gpu/launch.ts';
import embedSrc from './embed.wgsl' with { type: 'text' };
import gatherSrc from './gather_rows.wgsl' with { type: 'text' };

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
