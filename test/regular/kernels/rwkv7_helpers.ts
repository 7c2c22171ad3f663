// What the RWKV7 kernel tests share: a knob set for the length of a test, and the check of a fused op (under its
// FLA_KERNEL_* variant) against the reference on both backends and against its unfused ops on the GPU.
import { expect } from 'bun:test';
import { expectClose, type Prng } from '../../helpers/allclose.ts';
import { gpu } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, runOn, type Body, type Setup, type StepSpec } from './harness.ts';

/**
 * True (skip) on a CPU adapter under the other WebGPU binding than `binding`: on lavapipe each fused RWKV7 decode
 * shader variant takes tens of seconds to compile with a cold shader cache, and CI runs npm test once per binding
 * (.ci/run), so the variants beyond the main path are split between the two passes; each still runs in one of them.
 * On a GPU (or with FLA_TEST_ALL_BINDINGS=1) every case runs.
 */
export function otherBindingOnCpu(binding: 'bun-webgpu' | 'dawn'): boolean {
  return !!gpu && gpu.summary.type === 'cpu' && gpu.summary.binding !== binding && process.env.FLA_TEST_ALL_BINDINGS !== '1';
}

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
