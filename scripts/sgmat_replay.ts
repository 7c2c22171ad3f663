// Timing for the sgmat scripts (bench_sgmat.ts, sgmat_sweep.ts, sgmat_ab.ts): recorded dispatches replayed in one submit.
import type { Tensor } from '../src/backend/backend.ts';
import type { Dispatch, Gpu } from '../src/gpu/device.ts';

/** Milliseconds from submitting `reps` replays of `ds` (one command buffer) until the queue is done. */
export async function replayMs(gpu: Gpu, ds: Dispatch[], reps: number): Promise<number> {
  const enc = gpu.device.createCommandEncoder();
  for (let i = 0; i < reps; i++) gpu.encode(enc, ds);
  gpu.submit(enc);
  const t0 = performance.now();
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

/** µs a call of `ds`: after two warm replays, replays filling at least `windowMs` (4 … 400 of them). */
export async function replayUs(gpu: Gpu, ds: Dispatch[], windowMs: number): Promise<number> {
  const run = (reps: number) => replayMs(gpu, ds, reps);
  await run(2);
  const one = Math.max(0.004, (await run(4)) / 4);
  const reps = Math.max(4, Math.min(400, Math.ceil(windowMs / one)));
  return (await run(reps)) / reps * 1000;
}

/** Run `ds` once and read the first n values of y. */
export async function runAndRead(gpu: Gpu, ds: Dispatch[], y: Tensor, n: number): Promise<Float32Array> {
  const enc = gpu.device.createCommandEncoder();
  gpu.encode(enc, ds);
  gpu.submit(enc);
  const v = (y as any).view;
  return new Float32Array(await gpu.read(v.buffer, v.offset, 4 * n));
}
