// silu_mul op: y = silu(a) ⊙ b.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, rowsOf, u32 } from '../lib.ts';
import { siluMulRef } from './silu_mul.ref.ts';
import source from './silu_mul.wgsl' with { type: 'text' };

export const KERNEL = kernel('silu_mul', source, ['step', 'a', 'b', 'y', 'dims']);

export interface SiluMulArgs { a: Tensor; b: Tensor; y: Tensor }

export const siluMulOp = op<SiluMulArgs>({
  name: 'silu_mul',
  check({ a, b, y }) {
    if (b.cols !== a.cols || y.cols !== a.cols || b.rows !== a.rows || y.rows !== a.rows) throw new ShapeError(`silu_mul: a ${a.cols} columns, b ${b.cols}, out ${y.cols}`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (x, c) => {
        const rows = rowsOf(x.a, c);
        return [{
          kernel: KERNEL, grid: grid(Math.ceil(rows * x.a.cols / 64)), cost: { flops: 5 * rows * x.a.cols, bytes: 12 * rows * x.a.cols },
          defines: { ROWS_K: x.a.rows === 'k' }, bind: { a: x.a, b: x.b, y: x.y, dims: u32(x.a.cols) },
        }];
      },
    },
  },
  ref: (x, h) => siluMulRef(h.data(x.a), h.data(x.b), h.data(x.y), h.cap(x.a) * x.a.cols),
});

/** out = silu(a) ⊙ b, elementwise over rows of a. */
export function siluMul(o: Backend, a: Tensor, b: Tensor, out: Tensor): Promise<void> {
  return o.run(siluMulOp, { a, b, y: out });
}
