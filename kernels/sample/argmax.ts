// argmax op (greedy sampling on the GPU): per kept row of logits, the token id and a non-finite flag, so a decode
// step reads back 8 bytes per row instead of the logits. out is an f32 [K, 2] tensor (id, flag) on every backend.
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, type StepCtx, type View } from '../../src/gpu/launch.ts';
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { ShapeError } from '../../src/util/errors.ts';
import source from './argmax.wgsl' with { type: 'text' };
import { argmaxRef } from './argmax.ref.ts';

export const BINDINGS = ['step', 'logits', 'part', 'out'] as const;

const WG = 256;
/** Segments per row: each lane of a segment reads about 4 values; at most 1024 segments. */
export function segments(V: number): number {
  return Math.max(1, Math.min(1024, Math.ceil(V / (4 * WG))));
}

/** Two dispatches over logits [K, V] (K = the step's kept rows): partial maxima per segment, then (id, flag) per row. */
export async function build(gpu: Gpu, s: StepCtx, a: { logits: View; V: number; part: View; out: View }): Promise<Dispatch[]> {
  const G = segments(a.V);
  const entries = [{ buffer: s.uniform }, binding(a.logits), binding(a.part), binding(a.out), { buffer: gpu.uniform(new Uint32Array([a.V, G, 0, 0])) }];
  return [
    await dispatch(gpu, { label: 'argmax', source, defines: { WG, FINAL: false } }, entries, [G, s.k, 1]),
    await dispatch(gpu, { label: 'argmax', source, defines: { WG, FINAL: true } }, entries, [1, s.k, 1]),
  ];
}

/** out[r] = (argmax of logits row r, 1 if that row holds NaN/±Inf else 0); logits and out are 'k'-row tensors. */
export async function argmax(o: Backend, logits: Tensor, out: Tensor): Promise<void> {
  if (logits.rows !== 'k' || out.rows !== 'k' || out.cols !== 2) throw new ShapeError('argmax: logits and out must be kept-row tensors, out [K, 2]');
  const V = logits.cols;
  if (o instanceof GpuBackend) {
    const part = o.act('argmax_part', 3 * segments(V), { rows: 'k' });
    const ds = await build(o.gpu, o.step, { logits: o.view(logits), V, part: o.view(part), out: o.view(out) });
    o.push(ds[0]!, { flops: 0, bytes: 4 * o.step.k * V });
    o.push(ds[1]!);
    return;
  }
  const c = o as CpuBackend;
  const K = c.step.keep.length;
  const r = argmaxRef(c.data(logits), K, V);
  const y = c.data(out);
  for (let i = 0; i < K; i++) { y[2 * i] = r.ids[i]!; y[2 * i + 1] = r.nonFinite[i]!; }
}
