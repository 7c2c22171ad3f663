// layer_norm op wrapper: builds the dispatch for kernels/norm/layer_norm.wgsl.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import source from './layer_norm.wgsl' with { type: 'text' };
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { layerNormRef } from './layer_norm.ref.ts';

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

/** out = LayerNorm(x)·w (+ b), row by row ('n' or 'k' rows). */
export async function layerNorm(o: Backend, x: Tensor, w: Weight, b: Weight | null, eps: number, out: Tensor): Promise<void> {
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, { x: o.view(x), w: o.weightView(w), b: b ? o.weightView(b) : null, y: o.view(out), C: x.cols, eps, rowsK: x.rows === 'k' }), cost(x.rows === 'k' ? o.step.k : o.step.n, x.cols));
    return;
  }
  const c = o as CpuBackend;
  layerNormRef(c.data(x), c.weightData(w), b ? c.weightData(b) : null, c.data(out), c.capacity(x), x.cols, eps);
}
