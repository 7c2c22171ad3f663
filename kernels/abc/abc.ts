// abc op wrapper (kernels/abc/abc_recurrent.wgsl): ABC's two-stage slot-memory recurrence, recurrent over each
// packed sequence with per-slot f32 state (Hk, Hv and the running log-normaliser z).
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { abcRef, abcStateCols, type AbcDims } from './abc.ref.ts';
import source from './abc_recurrent.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'meta', 'q', 'k', 'v', 's', 'state', 'o', 'dims'] as const;

export interface AbcArgs extends AbcDims { q: View; k: View; v: View; s: View; state: View; o: View }

export function build(gpu: Gpu, st: StepCtx, a: AbcArgs): Promise<Dispatch> {
  const cap = Math.min(256, gpu.maxInvocations);
  let WG = 64;
  while (WG < Math.max(a.M, a.DV) && WG < cap) WG *= 2;
  if (WG > cap) throw new ShapeError(`abc: adapter allows only ${cap} invocations per workgroup`);
  return dispatch(gpu, {
    label: 'abc_recurrent', source,
    defines: { DK: a.DK, DV: a.DV, M: a.M, WG, NM: Math.ceil(a.M / WG), NV: Math.ceil(a.DV / WG) },
  }, [{ buffer: st.uniform }, { buffer: st.meta }, binding(a.q), binding(a.k), binding(a.v), binding(a.s), binding(a.state), binding(a.o),
    { buffer: gpu.uniform(new Float32Array([a.H, a.scale, a.clampMin, a.clampMax])) }],
  [a.H, st.b, 1]);
}

export function cost(N: number, H: number, DK: number, DV: number, M: number) {
  return { flops: 4 * N * H * M * (DK + DV), bytes: 4 * N * H * (2 * DK + 2 * DV + M) };
}

export interface AbcOp { q: Tensor; k: Tensor; v: Tensor; s: Tensor; state: Tensor; out: Tensor; H: number; DK: number; DV: number; M: number; scale: number; clampMin: number | null; clampMax: number | null }

/** o = ABC attention of (rotated) q, k, v with slot logits s; the slot state continues each sequence. */
export async function abc(o: Backend, a: AbcOp): Promise<void> {
  const d: AbcDims = { H: a.H, DK: a.DK, DV: a.DV, M: a.M, scale: a.scale, clampMin: a.clampMin ?? -3e38, clampMax: a.clampMax ?? 3e38 };
  if (a.state.cols !== abcStateCols(d)) throw new ShapeError(`abc: state has ${a.state.cols} columns per slot, expected ${abcStateCols(d)}`);
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, { ...d, q: o.view(a.q), k: o.view(a.k), v: o.view(a.v), s: o.view(a.s), state: o.view(a.state), o: o.view(a.out) }));
    return;
  }
  const c = o as CpuBackend;
  abcRef(c.data(a.q), c.data(a.k), c.data(a.v), c.data(a.s), c.data(a.state), c.data(a.out), c.step.cursors, d);
}
