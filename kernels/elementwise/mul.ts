// mul op: y (+)= a ⊙ s elementwise, or a scaled per row by one column of s.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, rowsOf, u32 } from '../lib.ts';
import { mulRef } from './mul.ref.ts';
import source from './mul.wgsl' with { type: 'text' };

export const KERNEL = kernel('mul', source, ['step', 'a', 's', 'y', 'dims']);

/** col: scale each row by column `col` of s instead of elementwise (null). */
export interface MulArgs { a: Tensor; s: Tensor; y: Tensor; col: number | null; accumulate: boolean }

export const mulOp = op<MulArgs>({
  name: 'mul',
  check({ a, s, y, col }) {
    if (y.cols !== a.cols || a.rows !== s.rows || a.rows !== y.rows || (col === null ? s.cols !== a.cols : col < 0 || col >= s.cols))
      throw new ShapeError(`mul: a ${a.cols} columns, s ${s.cols}, out ${y.cols}, column ${col}`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (x, c) => {
        const rows = rowsOf(x.a, c);
        return [{
          kernel: KERNEL, grid: grid(Math.ceil(rows * x.a.cols / 64)), cost: { flops: rows * x.a.cols * 2, bytes: 12 * rows * x.a.cols },
          defines: { BROADCAST: x.col !== null, ACCUM: x.accumulate, ROWS_K: x.a.rows === 'k' },
          bind: { a: x.a, s: x.s, y: x.y, dims: u32(x.a.cols, x.s.cols, x.col ?? 0, 0) },
        }];
      },
    },
  },
  ref: (x, h) => mulRef(h.data(x.a), h.data(x.s), h.data(x.y), h.cap(x.a), x.a.cols, x.s.cols, x.col, x.accumulate),
});

export interface MulOpts { /** scale each row by column `col` of s instead of elementwise */ col?: number; accumulate?: boolean }

/** out (+)= a ⊙ s (s as wide as a), or out (+)= a · s[:, col] per row. out must be a tensor of its own. */
export function mul(o: Backend, a: Tensor, s: Tensor, out: Tensor, opts: MulOpts = {}): Promise<void> {
  return o.run(mulOp, { a, s, y: out, col: opts.col ?? null, accumulate: opts.accumulate ?? false });
}
