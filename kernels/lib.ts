// What every op file imports: the op contract (src/backend/op.ts) and the WGSL files kernels may #include,
// registered here (add a shared helper file to INCLUDES, then `#include "name"` it from any kernel).
import { defineOp, type Adapter, type Op } from '../src/backend/op.ts';
import kvCache from './attention/kv_cache.wgsl' with { type: 'text' };
import common from './common.wgsl' with { type: 'text' };
import deltaCommon from './delta/delta_common.wgsl' with { type: 'text' };
import glaCommon from './gla/gla_common.wgsl' with { type: 'text' };
import act from './matmul/act.wgsl' with { type: 'text' };
import gemvCommon from './matmul/matmul_gemv_common.wgsl' with { type: 'text' };
import wquad from './moe/wquad.wgsl' with { type: 'text' };
import argmaxCommon from './sample/argmax_common.wgsl' with { type: 'text' };

export * from '../src/backend/op.ts';

export const INCLUDES: Readonly<Record<string, string>> = {
  'common.wgsl': common, 'act.wgsl': act, 'delta_common.wgsl': deltaCommon, 'gla_common.wgsl': glaCommon, 'wquad.wgsl': wquad,
  'matmul_gemv_common.wgsl': gemvCommon, 'kv_cache.wgsl': kvCache, 'argmax_common.wgsl': argmaxCommon,
};

/** defineOp with the kernels' includes registered. */
export function op<A>(o: Op<A>): Op<A> {
  return defineOp({ ...o, includes: { ...INCLUDES, ...o.includes } });
}

export { grid } from '../src/util/grid.ts';

/**
 * Loads each lane keeps in flight by default where a CPU runs the shaders (lavapipe, SwiftShader): 1. There is no
 * memory latency to hide, and the driver's JIT time grows with the unrolled body — lavapipe with a cold Mesa shader
 * cache (a new machine, CI): `fla run` of llama-tiny 195 s with the decode GEMVs' default unrolling, 68 s with 1;
 * rwkv7-tiny's GEMVs 106 → 25 s. `gpuUnroll` is the GPU's default; the kernels' FLA_*_UNROLL knobs still force any.
 */
export function unrollFor(ad: Adapter, gpuUnroll: number): number { return shadersOnCpu(ad) ? 1 : gpuUnroll; }

/** A CPU runs the shaders (lavapipe, SwiftShader): no latency to hide, JIT time that grows with the code's size. */
export function shadersOnCpu(ad: Adapter): boolean { return ad.type === 'cpu'; }

/** Defines that select the weight unpacking in common.wgsl (wpair) for a weight's storage dtype. */
/** fp8 (F8_E4M3 with block scales) is decoded by wquad.wgsl only: kernels built on wpair never get fp8 weights. */
export const WDT = { f32: 1, bf16: 2, f16: 3, fp8: 4 } as const;
export function weightDefines(dtype: keyof typeof WDT): Record<string, number | boolean> {
  return { WDT: WDT[dtype], W_F32: dtype === 'f32', W_F16: dtype === 'f16', W_FP8: dtype === 'fp8' };
}
