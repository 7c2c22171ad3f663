// layer_norm op: LayerNorm over rows with weight and optional bias (kernels/norm/layer_norm.wgsl).
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { f32, grid, kernel, only, ONLY, op, rowsOf } from '../lib.ts';
import { layerNormRef } from './layer_norm.ref.ts';
import source from './layer_norm.wgsl' with { type: 'text' };

export const KERNEL = kernel('layer_norm', source, ['step', 'x', 'w', 'b', 'y', 'dims']);

export interface LayerNormArgs { x: Tensor; w: Weight; b: Weight | null; y: Tensor; eps: number }

/** Workgroup size for rows of C columns. */
export function workgroup(maxInvocations: number, C: number): number {
  return Math.min(256, maxInvocations, C >= 256 ? 256 : C >= 128 ? 128 : 64);
}

export const layerNormOp = op<LayerNormArgs>({
  name: 'layer_norm',
  check(a) { if (a.y.cols !== a.x.cols) throw new ShapeError(`layer_norm: ${a.x.cols} columns in, ${a.y.cols} out`); },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const C = a.x.cols, rows = rowsOf(a.x, c);
        return [{
          kernel: KERNEL, grid: grid(rows), cost: cost(rows, C),
          defines: { WG: workgroup(c.adapter.maxInvocations, C), HAS_BIAS: a.b !== null, ROWS_K: a.x.rows === 'k' },
          bind: { x: a.x, w: a.w, b: a.b ?? a.w, y: a.y, dims: f32(C, a.eps) },
        }];
      },
    },
  },
  ref: (a, h) => layerNormRef(h.data(a.x), h.data(a.w), a.b ? h.data(a.b) : null, h.data(a.y), h.cap(a.x), a.x.cols, a.eps),
});

export function cost(R: number, C: number) {
  return { flops: 8 * R * C, bytes: 4 * (3 * R * C + 2 * C) };
}

/** out = LayerNorm(x)·w (+ b), row by row ('n' or 'k' rows). */
export function layerNorm(o: Backend, x: Tensor, w: Weight, b: Weight | null, eps: number, out: Tensor): Promise<void> {
  return o.run(layerNormOp, { x, w, b, y: out, eps });
}
