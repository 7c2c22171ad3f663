// Timing for the sgmat scripts (bench_sgmat.ts, sgmat_sweep.ts): recorded dispatches replayed in one submit.
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
