// short_conv op (kernels/conv/short_conv.wgsl, then conv_store.wgsl): the causal depthwise short convolution of
// the delta-rule families (and any other mixer with a ShortConvolution) with its rolling per-slot history of the
// last W−1 inputs.
import type { Backend, StateSpec, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, u32, type Launch } from '../lib.ts';
import convSrc from './short_conv.wgsl' with { type: 'text' };
import storeSrc from './conv_store.wgsl' with { type: 'text' };
import { convStoreRef, shortConvRef, type ConvAct } from './short_conv.ref.ts';

export type { ConvAct };
export const KERNEL = kernel('short_conv', convSrc, ['step', 'stepmeta', 'x', 'w', 'state', 'y', 'dims']);
export const STORE_KERNEL = kernel('conv_store', storeSrc, ['step', 'stepmeta', 'x', 'state', 'dims']);
export const MAX_W = 17;

export interface ShortConvArgs { x: Tensor; w: Weight; state: Tensor; y: Tensor; act: ConvAct }

/** Kernel size W of a depthwise weight [C, 1, W] for C channels. */
const kernelSize = (a: ShortConvArgs) => a.w.shape.reduce((p, d) => p * d, 1) / a.x.cols;

export const shortConvOp = op<ShortConvArgs>({
  name: 'short_conv',
  check(a) {
    const C = a.x.cols, W = kernelSize(a);
    if (!Number.isInteger(W) || a.state.cols !== (W - 1) * C || a.y.cols !== C)
      throw new ShapeError(`short_conv: weight [${a.w.shape}] / state ${a.state.cols} / out ${a.y.cols} do not fit ${C} channels`);
    if (W < 2 || W > MAX_W) throw new ShapeError(`short_conv: kernel size ${W} must be in 2..${MAX_W}`);
  },
  select: only(),
  variants: {
    // the conv reads the history, then conv_store advances it past this step's tokens
    [ONLY]: {
      launches: (a, c): Launch[] => {
        const C = a.x.cols, W = kernelSize(a), dims = u32(C, W);
        return [
          { kernel: KERNEL, grid: grid(Math.ceil(c.step.n * C / 64)), defines: { SILU: a.act === 'silu' }, cost: cost(c.step.n, C, W),
            bind: { x: a.x, w: a.w, state: a.state, y: a.y, dims } },
          { kernel: STORE_KERNEL, grid: grid(Math.ceil(c.step.b * C / 64)), bind: { x: a.x, state: a.state, dims } },
        ];
      },
    },
  },
  ref: (a, h) => {
    const C = a.x.cols, W = kernelSize(a);
    shortConvRef(h.data(a.x), h.data(a.w), h.data(a.state), h.data(a.y), h.step.cursors, C, W, a.act);
    convStoreRef(h.data(a.x), h.data(a.state), h.step.cursors, C, W);
  },
});

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
export function shortConv(o: Backend, x: Tensor, w: Weight, state: Tensor, out: Tensor, act: ConvAct): Promise<void> {
  return o.run(shortConvOp, { x, w, state, y: out, act });
}
