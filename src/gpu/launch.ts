// Building a dispatch from a pipeline spec and bindings by name, and grid helpers.
import type { Binding, Dispatch, Gpu, PipelineSpec } from './device.ts';
import { pipelineKey } from './device.ts';

/** A range of a GPU buffer holding f32 (or packed 16-bit) data. */
export interface View { buffer: GPUBuffer; offset: number; size: number }

export function binding(v: View): Binding {
  return { buffer: v.buffer, offset: v.offset, size: v.size };
}

export { grid } from '../util/grid.ts';

/** A dispatch of `spec` with its bindings given by name (every `@binding` of the WGSL, no others). */
export async function dispatch(gpu: Gpu, spec: PipelineSpec, entries: Record<string, Binding>, workgroups: [number, number, number]): Promise<Dispatch> {
  const pipeline = await gpu.pipeline(spec);
  const bindGroup = gpu.bindGroup(pipeline, pipelineKey(spec), entries);
  return { pipeline, bindGroup, workgroups, label: spec.label };
}

export type WeightDtype = 'f32' | 'bf16' | 'f16';
