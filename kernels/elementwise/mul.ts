// mul op: y (+)= a ⊙ s elementwise, or a scaled per row by one column of s.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { mulRef } from './mul.ref.ts';
import source from './mul.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'a', 's', 'y', 'dims'] as const;

export interface MulArgs { a: View; s: View; y: View; C: number; S: number; col: number | null; accumulate: boolean; rowsK: boolean }

export function build(gpu: Gpu, s: StepCtx, a: MulArgs): Promise<Dispatch> {
  const rows = a.rowsK ? s.k : s.n;
  return dispatch(gpu, { label: 'mul', source, defines: { BROADCAST: a.col !== null, ACCUM: a.accumulate, ROWS_K: a.rowsK } },
    [{ buffer: s.uniform }, binding(a.a), binding(a.s), binding(a.y), { buffer: gpu.uniform(new Uint32Array([a.C, a.S, a.col ?? 0, 0])) }],
    grid(Math.ceil(rows * a.C / 64)));
}

export interface MulOpts { /** scale each row by column `col` of s instead of elementwise */ col?: number; accumulate?: boolean }

/** out (+)= a ⊙ s (s as wide as a), or out (+)= a · s[:, col] per row. out must be a tensor of its own. */
export async function mul(o: Backend, a: Tensor, s: Tensor, out: Tensor, opts: MulOpts = {}): Promise<void> {
  const col = opts.col ?? null, accumulate = opts.accumulate ?? false;
  if (out.cols !== a.cols || a.rows !== s.rows || a.rows !== out.rows || (col === null ? s.cols !== a.cols : col < 0 || col >= s.cols))
    throw new ShapeError(`mul: a ${a.cols} columns, s ${s.cols}, out ${out.cols}, column ${col}`);
  if (o instanceof GpuBackend) {
    const rows = a.rows === 'k' ? o.step.k : o.step.n;
    o.push(await build(o.gpu, o.step, { a: o.view(a), s: o.view(s), y: o.view(out), C: a.cols, S: s.cols, col, accumulate, rowsK: a.rows === 'k' }),
      { flops: rows * a.cols * 2, bytes: 12 * rows * a.cols });
    return;
  }
  const c = o as CpuBackend;
  mulRef(c.data(a), c.data(s), c.data(out), c.capacity(a), a.cols, s.cols, col, accumulate);
}
