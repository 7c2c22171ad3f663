// One WebGPU device shared by every GPU test (top-level await). `gpu` is null when no adapter is
// usable: GPU tests then skip with one message, unless FLA_REQUIRE_GPU=1 (CI), which makes it an error.
import { Gpu } from '../../src/gpu/device.ts';

/** FLA_REQUIRE_GPU=1: a missing adapter fails the tests instead of skipping them. */
export const REQUIRE_GPU = process.env.FLA_REQUIRE_GPU === '1';

async function open(): Promise<Gpu | null> {
  try {
    return await Gpu.create();
  } catch (e) {
    const why = (e as Error).message;
    if (REQUIRE_GPU) throw new Error(`FLA_REQUIRE_GPU=1 but no WebGPU device could be opened: ${why}`);
    console.warn(`skip: GPU tests (no WebGPU adapter: ${why}; set FLA_REQUIRE_GPU=1 to fail instead)`);
    return null;
  }
}

export const gpu: Gpu | null = await open();
export const HAS_GPU = gpu !== null;
