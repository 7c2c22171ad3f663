// short_conv and conv_store op wrappers (kernels/conv/short_conv.wgsl, conv_store.wgsl): the causal depthwise
// short convolution of the delta-rule families (and any other mixer with a ShortConvolution) with its rolling
// per-slot history of the last W−1 inputs.
import type { Gpu, Dispatch } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import convSrc from './short_conv.wgsl' with { type: 'text' };
import storeSrc from './conv_store.wgsl' with { type: 'text' };
import type { Backend, StateSpec, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { convStoreRef, shortConvRef, type ConvAct } from './short_conv.ref.ts';

export type { ConvAct };
export const BINDINGS = ['step', 'meta', 'x', 'w', 'state', 'y', 'dims'] as const;
export const STORE_BINDINGS = ['step', 'meta', 'x', 'state', 'dims'] as const;
export const MAX_W = 17;

export interface ShortConvArgs { x: View; w: View; state: View; y: View; C: number; W: number; act: ConvAct }

export function build(gpu: Gpu, s: StepCtx, a: ShortConvArgs): Promise<Dispatch> {
  if (a.W < 2 || a.W > MAX_W) throw new ShapeError(`short_conv: kernel size ${a.W} must be in 2..${MAX_W}`);
  return dispatch(gpu, { label: 'short_conv', source: convSrc, defines: { SILU: a.act === 'silu' } },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.x), binding(a.w), binding(a.state), binding(a.y), { buffer: gpu.uniform(new Uint32Array([a.C, a.W])) }],
    grid(Math.ceil(s.n * a.C / 64)));
}

export function buildStore(gpu: Gpu, s: StepCtx, a: { x: View; state: View; C: number; W: number }): Promise<Dispatch> {
  if (a.W < 2 || a.W > MAX_W) throw new ShapeError(`conv_store: kernel size ${a.W} must be in 2..${MAX_W}`);
  return dispatch(gpu, { label: 'conv_store', source: storeSrc },
    [{ buffer: s.uniform }, { buffer: s.meta }, binding(a.x), binding(a.state), { buffer: gpu.uniform(new Uint32Array([a.C, a.W])) }],
    grid(Math.ceil(s.b * a.C / 64)));
}

export function cost(N: number, C: number, W: number) {
  return { flops: 2 * N * C * W, bytes: 4 * (2 * N * C + C * W) };
}

/** The per-slot state a conv of C channels and kernel size W needs. */
export function convState(key: string, C: number, W: number): StateSpec {
  return { key, cols: (W - 1) * C };
}

/**
 * out = act(causal depthwise conv of x with w [C, 1, W]) per sequence, continuing each slot's history; then the
 * history is advanced past this step's tokens (so call it once per step and layer).
 */
export async function shortConv(o: Backend, x: Tensor, w: Weight, state: Tensor, out: Tensor, act: ConvAct): Promise<void> {
  const C = x.cols, W = w.shape.reduce((p, d) => p * d, 1) / C;
  if (!Number.isInteger(W) || state.cols !== (W - 1) * C || out.cols !== C)
    throw new ShapeError(`short_conv: weight [${w.shape}] / state ${state.cols} / out ${out.cols} do not fit ${C} channels`);
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, { x: o.view(x), w: o.weightView(w), state: o.view(state), y: o.view(out), C, W, act }));
    o.push(await buildStore(o.gpu, o.step, { x: o.view(x), state: o.view(state), C, W }));
    return;
  }
  const c = o as CpuBackend;
  shortConvRef(c.data(x), c.weightData(w), c.data(state), c.data(out), c.step.cursors, C, W, act);
  convStoreRef(c.data(x), c.data(state), c.step.cursors, C, W);
}
