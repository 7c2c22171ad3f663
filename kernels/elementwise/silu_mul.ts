// silu_mul op: y = silu(a) ⊙ b.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { dispatch, grid } from '../../src/gpu/launch.ts';
import { siluMulRef } from './silu_mul.ref.ts';
import source from './silu_mul.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'a', 'b', 'y', 'dims'] as const;

export async function siluMul(o: Backend, a: Tensor, b: Tensor, out: Tensor): Promise<void> {
  if (o instanceof GpuBackend) {
    const s = o.step, rows = a.rows === 'k' ? s.k : s.n;
    o.push(await dispatch(o.gpu, { label: 'silu_mul', source, defines: { ROWS_K: a.rows === 'k' } },
      [{ buffer: s.uniform }, o.view(a), o.view(b), o.view(out), { buffer: o.gpu.uniform(new Uint32Array([a.cols])) }],
      grid(Math.ceil(rows * a.cols / 64))), { flops: 5 * rows * a.cols, bytes: 12 * rows * a.cols });
    return;
  }
  const c = o as CpuBackend;
  siluMulRef(c.data(a), c.data(b), c.data(out), c.capacity(a) * a.cols);
}
