// layer_norm op wrapper: builds the dispatch for kernels/norm/layer_norm.wgsl.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import source from './layer_norm.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'x', 'w', 'b', 'y'] as const;

export interface LayerNormArgs { x: View; w: View; b: View | null; y: View; C: number; eps: number; rowsK: boolean }

export function select(gpu: Gpu, C: number): number {
  return Math.min(256, gpu.maxInvocations, C >= 256 ? 256 : C >= 128 ? 128 : 64);
}

export function build(gpu: Gpu, s: StepCtx, a: LayerNormArgs): Promise<Dispatch> {
  const WG = select(gpu, a.C);
  const rows = a.rowsK ? s.k : s.n;
  return dispatch(gpu, {
    label: 'layer_norm', source,
    defines: { WG, HAS_BIAS: a.b !== null, ROWS_K: a.rowsK },
  }, [{ buffer: s.uniform }, binding(a.x), binding(a.w), binding(a.b ?? a.w), binding(a.y), { buffer: gpu.uniform(new Float32Array([a.C, a.eps])) }], grid(rows));
}

export function cost(R: number, C: number) {
  return { flops: 8 * R * C, bytes: 4 * (3 * R * C + 2 * C) };
}
