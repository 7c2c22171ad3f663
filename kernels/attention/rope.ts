// rope op: rotary position embedding in place on q or k ([N, H·D]) from a host-computed cos/sin table.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, u32 } from '../lib.ts';
import { ropeRef } from './rope.ref.ts';
import source from './rope.wgsl' with { type: 'text' };

export const KERNEL = kernel('rope', source, ['step', 'stepmeta', 'x', 'table', 'dims']);

/** x [N, H·D] in place; table is ropeTable(...) uploaded as a [2, P, R/2] f32 weight; R rotary dims of each head of D. */
export interface RopeArgs { x: Tensor; table: Weight; D: number; R: number }

export const ropeOp = op<RopeArgs>({
  name: 'rope',
  check(a) {
    const H = a.x.cols / a.D;
    if (!Number.isInteger(H) || a.R % 2 || a.R > a.D || a.table.shape[2] !== a.R / 2) throw new ShapeError(`rope: bad shapes (cols ${a.x.cols}, head dim ${a.D}, rotary dim ${a.R})`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const H = a.x.cols / a.D, n = c.step.n;
        return [{
          kernel: KERNEL, grid: grid(Math.ceil(n * H * a.R / 2 / 64)), cost: { flops: 3 * n * H * a.R, bytes: 12 * n * H * a.R },
          bind: { x: a.x, table: a.table, dims: u32(H, a.D, a.R, a.table.shape[1]!) },
        }];
      },
    },
  },
  ref: (a, h) => ropeRef(h.data(a.x), h.data(a.table), h.step.cursors, a.x.cols / a.D, a.D, a.R, a.table.shape[1]!),
});

/** x [N, H·D] in place; table is ropeTable(...) uploaded as a [2, P, R/2] f32 weight. */
export function rope(o: Backend, x: Tensor, table: Weight, a: { D: number; R: number }): Promise<void> {
  return o.run(ropeOp, { x, table, D: a.D, R: a.R });
}
