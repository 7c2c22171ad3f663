// rope op: rotary position embedding in place on q or k ([N, H·D]) from a host-computed cos/sin table.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { dispatch, grid } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { ropeRef } from './rope.ref.ts';
import source from './rope.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'stepmeta', 'x', 'table', 'dims'] as const;

/** x [N, H·D] in place; table is ropeTable(...) uploaded as a [2, P, R/2] f32 weight. */
export async function rope(o: Backend, x: Tensor, table: Weight, a: { D: number; R: number }): Promise<void> {
  const H = x.cols / a.D, P = table.shape[1]!;
  if (!Number.isInteger(H) || a.R % 2 || a.R > a.D || table.shape[2] !== a.R / 2) throw new ShapeError(`rope: bad shapes (cols ${x.cols}, head dim ${a.D}, rotary dim ${a.R})`);
  if (o instanceof GpuBackend) {
    const s = o.step;
    o.push(await dispatch(o.gpu, { label: 'rope', source }, [{ buffer: s.uniform }, { buffer: s.meta }, o.view(x), o.weightView(table),
      { buffer: o.gpu.uniform(new Uint32Array([H, a.D, a.R, P])) }], grid(Math.ceil(s.n * H * a.R / 2 / 64))), { flops: 3 * s.n * H * a.R, bytes: 12 * s.n * H * a.R });
    return;
  }
  const c = o as CpuBackend;
  ropeRef(c.data(x), c.weightData(table), c.step.cursors, H, a.D, a.R, P);
}
