// What every kernel wrapper needs to build a dispatch: the step's buffers and counts, and grid helpers.
import type { Binding, Dispatch, Gpu, PipelineSpec } from './device.ts';
import { pipelineKey } from './device.ts';
import type { Cursor } from '../../kernels/step.ts';

/** Per-step GPU inputs shared by all kernels: the Step uniform, the u32 meta buffer and the host-side counts. */
export interface StepCtx {
  uniform: GPUBuffer;
  meta: GPUBuffer;
  dummy: GPUBuffer;   // 16 bytes bound where an optional input is absent
  n: number; k: number; b: number; cap: number;
  cursors?: Cursor[];   // host copy of the step's cursors (for costs and dispatch sizes)
}

/** A range of a GPU buffer holding f32 (or packed 16-bit) data. */
export interface View { buffer: GPUBuffer; offset: number; size: number }

export function binding(v: View): Binding {
  return { buffer: v.buffer, offset: v.offset, size: v.size };
}

/** Workgroup grid for `total` workgroups, split over x and y to respect the 65535 per-dimension limit. */
export function grid(total: number): [number, number, number] {
  const t = Math.max(1, total);
  if (t <= 65535) return [t, 1, 1];
  const y = Math.ceil(t / 65535);
  return [Math.ceil(t / y), y, 1];
}

export async function dispatch(gpu: Gpu, spec: PipelineSpec, entries: Binding[], workgroups: [number, number, number]): Promise<Dispatch> {
  const pipeline = await gpu.pipeline(spec);
  const bindGroup = gpu.bindGroup(pipeline, pipelineKey(spec), entries);
  return { pipeline, bindGroup, workgroups, label: spec.label };
}

export const WDT = { f32: 1, bf16: 2, f16: 3, fp8: 4 } as const;
export type WeightDtype = keyof typeof WDT;

/** Defines that select the weight unpacking in common.wgsl. */
export function weightDefines(dtype: WeightDtype): Record<string, number | boolean> {
  return { WDT: WDT[dtype], W_F32: dtype === 'f32', W_F16: dtype === 'f16', W_FP8: dtype === 'fp8' };
}
