// rms_norm op: RMSNorm over rows (optionally per head), zero-centred weight, SiLU gate.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { rmsNormRef } from './rms_norm.ref.ts';
import source from './rms_norm.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'x', 'w', 'g', 'y', 'dims'] as const;

export interface RmsNormArgs { x: View; w: View | null; g: View | null; y: View; C: number; G: number; eps: number; plusOne: boolean; rowsK: boolean }

export function build(gpu: Gpu, s: StepCtx, a: RmsNormArgs): Promise<Dispatch> {
  const WG = Math.min(gpu.maxInvocations, a.C >= 256 ? 256 : a.C >= 128 ? 128 : 64);
  const rows = (a.rowsK ? s.k : s.n) * a.G;
  return dispatch(gpu, {
    label: 'rms_norm', source,
    defines: { WG, HAS_W: a.w !== null, PLUS_ONE: a.plusOne, HAS_GATE: a.g !== null, ROWS_K: a.rowsK },
  }, [{ buffer: s.uniform }, binding(a.x), a.w ? binding(a.w) : { buffer: s.dummy }, a.g ? binding(a.g) : { buffer: s.dummy }, binding(a.y),
    { buffer: gpu.uniform(new Float32Array([a.C, a.G, a.eps])) }], grid(rows));
}

export interface RmsNormOp { eps: number; headDim?: number; plusOne?: boolean; gate?: Tensor | null }

/**
 * out = RMSNorm(x)·w over rows of x.cols, or per head of `headDim` columns (w then has headDim entries).
 * x, gate and out share the layout [rows, cols]; w may be null.
 */
export async function rmsNorm(o: Backend, x: Tensor, w: Weight | null, out: Tensor, opts: RmsNormOp): Promise<void> {
  const C = opts.headDim ?? x.cols;
  if (x.cols % C !== 0) throw new ShapeError(`rms_norm: head dim ${C} does not divide ${x.cols}`);
  const G = x.cols / C;
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, {
      x: o.view(x), w: w ? o.weightView(w) : null, g: opts.gate ? o.view(opts.gate) : null, y: o.view(out),
      C, G, eps: opts.eps, plusOne: opts.plusOne ?? false, rowsK: x.rows === 'k',
    }), cost((x.rows === 'k' ? o.step.k : o.step.n) * G, C));
    return;
  }
  const c = o as CpuBackend;
  rmsNormRef(c.data(x), w ? c.weightData(w) : null, c.data(out), c.capacity(x) * G, C,
    { eps: opts.eps, plusOne: opts.plusOne, gate: opts.gate ? c.data(opts.gate) : null });
}

export function cost(R: number, C: number) {
  return { flops: 5 * R * C, bytes: 4 * (3 * R * C + C) };
}
