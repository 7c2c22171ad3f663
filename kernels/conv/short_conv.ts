// short_conv op: the causal depthwise short convolution of the delta-rule families (and any other mixer with a
// ShortConvolution) with its rolling per-slot history of the last W−1 inputs. Variants: 'fused'
// (short_conv_fused.wgsl: the conv and the history update in one dispatch, the default) and 'split'
// (short_conv.wgsl, then conv_store.wgsl: the unfused pair, the reference the fused one is tested against).
// The input may be a part of a wider packed row (one conv over the q|k|v columns of a fused projection).
import type { Backend, StateSpec, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, op, u32, type Ctx, type Launch } from '../lib.ts';
import convSrc from './short_conv.wgsl' with { type: 'text' };
import storeSrc from './conv_store.wgsl' with { type: 'text' };
import fusedSrc from './short_conv_fused.wgsl' with { type: 'text' };
import { convStoreRef, shortConvRef, type ConvAct, type ConvLayout } from './short_conv.ref.ts';
import type { Cursor } from '../../src/util/step.ts';

export type { ConvAct };
export const KERNEL = kernel('short_conv', convSrc, ['step', 'stepmeta', 'x', 'w', 'state', 'y', 'dims']);
export const STORE_KERNEL = kernel('conv_store', storeSrc, ['step', 'stepmeta', 'x', 'state', 'dims']);
export const FUSED_KERNEL = kernel('short_conv_fused', fusedSrc, ['step', 'stepmeta', 'x', 'w', 'state', 'y', 'dims']);
export const MAX_W = 17;

/**
 * y = act(conv(x)) over C = y.cols channels. x's channels are its columns [xOff, xOff + C) (default 0: x.cols = C);
 * channels from `siluFrom` on take SiLU whatever `act` says (default C: none).
 */
export interface ShortConvArgs { x: Tensor; w: Weight; state: Tensor; y: Tensor; act: ConvAct; xOff?: number; siluFrom?: number }

export type ConvKernel = 'fused' | 'split';

/** Kernel size W of a depthwise weight [C, 1, W] for C channels. */
export const kernelSize = (a: ShortConvArgs) => a.w.shape.reduce((p, d) => p * d, 1) / a.y.cols;
const layout = (a: ShortConvArgs): ConvLayout => ({ xS: a.x.cols, xO: a.xOff ?? 0, split: a.siluFrom ?? a.y.cols });
const dimsOf = (a: ShortConvArgs) => {
  const l = layout(a);
  return u32(a.y.cols, kernelSize(a), l.xS, l.xO, l.split, 0, 0, 0);
};

export const shortConvOp = op<ShortConvArgs>({
  name: 'short_conv',
  check(a) {
    const C = a.y.cols, W = kernelSize(a), off = a.xOff ?? 0, split = a.siluFrom ?? C;
    if (!Number.isInteger(W) || a.state.cols !== (W - 1) * C)
      throw new ShapeError(`short_conv: weight [${a.w.shape}] / state ${a.state.cols} do not fit ${C} channels`);
    if (!Number.isInteger(off) || off < 0 || off + C > a.x.cols) throw new ShapeError(`short_conv: channels [${off}, ${off + C}) do not fit the input's ${a.x.cols} columns`);
    if (!Number.isInteger(split) || split < 0 || split > C) throw new ShapeError(`short_conv: siluFrom ${split} is not in 0..${C}`);
    if (W < 2 || W > MAX_W) throw new ShapeError(`short_conv: kernel size ${W} must be in 2..${MAX_W}`);
  },
  /** One dispatch on every adapter; FLA_KERNEL_SHORT_CONV=split forces the unfused pair. */
  select: (_c: Ctx) => 'fused',
  variants: {
    fused: { launches: (a, c): Launch[] => [shortConvLaunch(a, c)] },
    // the conv reads the history, then conv_store advances it past this step's tokens
    split: {
      launches: (a, c): Launch[] => {
        const C = a.y.cols, W = kernelSize(a), dims = dimsOf(a);
        return [
          { kernel: KERNEL, grid: grid(Math.ceil(c.step.n * C / 64)), defines: { SILU: a.act === 'silu' }, cost: cost(c.step.n, C, W),
            bind: { x: a.x, w: a.w, state: a.state, y: a.y, dims } },
          { kernel: STORE_KERNEL, grid: grid(Math.ceil(c.step.b * C / 64)), bind: { x: a.x, state: a.state, dims } },
        ];
      },
    },
  },
  ref: (a, h) => shortConvOpRef(a, h.data(a.x), h.data(a.w), h.data(a.state), h.data(a.y), h.step.cursors),
});

/** The launch of the fused conv (another op running the conv ahead of its own kernels takes it). */
export function shortConvLaunch(a: ShortConvArgs, c: Ctx): Launch {
  return {
    kernel: FUSED_KERNEL, grid: grid(Math.ceil(c.step.n * a.y.cols / 64)), defines: { SILU: a.act === 'silu' },
    cost: cost(c.step.n, a.y.cols, kernelSize(a)), bind: { x: a.x, w: a.w, state: a.state, y: a.y, dims: dimsOf(a) },
  };
}

/** The reference of the op (conv, then the history update). */
export function shortConvOpRef(a: ShortConvArgs, x: Float32Array, w: Float32Array, state: Float32Array, y: Float32Array, cursors: Cursor[]): void {
  const C = a.y.cols, W = kernelSize(a), l = layout(a);
  shortConvRef(x, w, state, y, cursors, C, W, a.act, l);
  convStoreRef(x, state, cursors, C, W, l);
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
 * history is advanced past this step's tokens (so call it once per step and layer). `opts`: x's channels start at
 * column xOff of its rows; channels from siluFrom on always take SiLU.
 */
export function shortConv(o: Backend, x: Tensor, w: Weight, state: Tensor, out: Tensor, act: ConvAct, opts: { xOff?: number; siluFrom?: number } = {}): Promise<void> {
  return o.run(shortConvOp, { x, w, state, y: out, act, ...opts });
}
