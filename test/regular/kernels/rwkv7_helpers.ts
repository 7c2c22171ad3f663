// What the RWKV7 kernel tests share: a knob set for the length of a test, and the check of a fused op (under its
// FLA_KERNEL_* variant) against the reference on both backends and against its unfused ops on the GPU.
import { expect } from 'bun:test';
import { expectClose, type Prng } from '../../helpers/allclose.ts';
import { checkBoth, gpuBackend, runOn, type Body, type Setup, type StepSpec } from './harness.ts';

/** fn with environment variable `name` set to `value`, restored after. */
export async function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const prev = process.env[name];
  process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (prev === undefined) delete process.env[name]; else process.env[name] = prev;
  }
}

/**
 * With knob = variant: `fused` on the CPU (the reference) and the GPU, compared (checkBoth); then `unfused` (the ops
 * the fused one replaces) on the GPU, every output it returns compared with the reference's.
 */
export async function checkFused(knob: string, variant: string, step: StepSpec, setup: Setup, fused: Body, unfused: Body, rng: Prng, what: string): Promise<void> {
  await withEnv(knob, variant, async () => {
    const want = await checkBoth(step, setup, fused, { seed: rng, what });
    const unf = await runOn(gpuBackend(), 'gpu', step, setup, unfused);
    for (const k of Object.keys(unf)) {
      expect(unf[k]!.shape).toEqual(want[k]!.shape);
      expectClose(unf[k]!.data, want[k]!.data, { what: `${what} ${k} (the unfused ops on the GPU)`, seed: rng });
    }
  });
}
