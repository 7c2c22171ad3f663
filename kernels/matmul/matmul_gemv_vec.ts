// matmul_gemv_vec: the decode GEMV family (1..16 rows, weights read once for all of them). plan() picks the
// load width, lanes per output row and batch rows per pass from the shape and the adapter; build() records it.
import type { Binding, Dispatch, Gpu } from '../../src/gpu/device.ts';
import { dispatch, grid, type WeightDtype } from '../../src/gpu/launch.ts';
import source from './matmul_gemv_vec.wgsl' with { type: 'text' };

/** Rows one dispatch holds in registers at most. */
export const GEMV_VEC_RMAX = 16;

export interface GemvVecPlan {
  WG: number; TPR: number; RB: number; UNROLL: number; VEC: boolean; SG_RED: boolean; SGS: number;
  U: number;                          // load units per W row
  workgroups: [number, number, number];
}

/** Threads a dispatch should launch to keep enough loads in flight on a large GPU (132 SMs × 1024). */
const TARGET_THREADS = 1 << 17;

/**
 * Geometry for `rows` rows of x [rows, IN] times W [OUT, IN]. subgroups: reduce with subgroup operations
 * (only when the adapter's subgroup size is fixed; portable workgroup-memory reduction otherwise).
 * xAligned: x's binding offset is a multiple of 16 bytes (vec4 loads).
 */
export function plan(gpu: Gpu, rows: number, IN: number, OUT: number, dtype: WeightDtype, xAligned: boolean, subgroups: boolean): GemvVecPlan {
  const epw = dtype === 'f32' ? 1 : 2;                  // elements per u32 word
  const VEC = xAligned && IN % (4 * epw) === 0;
  const U = VEC ? IN / (4 * epw) : IN / epw;
  const WG = Math.min(256, gpu.maxInvocations);
  const SGS = gpu.summary.subgroupMinSize;
  const SG_RED = subgroups && gpu.subgroups && SGS > 0 && SGS === gpu.summary.subgroupMaxSize && SGS <= WG && (SGS & (SGS - 1)) === 0;
  // lanes per row: start at 32, widen (split-K) while the grid is too small and each lane keeps ≥ 4 units,
  // narrow while lanes would idle on a short row
  let TPR = Math.min(32, WG);
  while (TPR < WG && OUT * TPR < TARGET_THREADS && 8 * TPR <= U) TPR *= 2;
  while (TPR > 1 && TPR > U) TPR /= 2;
  const RB = rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : rows <= 8 ? 8 : GEMV_VEC_RMAX;
  const [gx, gy] = grid(Math.ceil(OUT / (WG / TPR)));
  return { WG, TPR, RB, UNROLL: Math.min(4, 16 / RB), VEC, SG_RED, SGS: SG_RED ? SGS : 0, U, workgroups: [gx, gy, Math.ceil(rows / RB)] };
}

/** defines: the matmul's (ACT, HAS_BIAS, ACCUM, ROWS_K, weight dtype); entries: matmul's six bindings. */
export function build(gpu: Gpu, p: GemvVecPlan, defines: Record<string, number | boolean>, entries: Binding[], IN: number, OUT: number): Promise<Dispatch> {
  // WDT 0 leaves out common.wgsl's wpair(), which reads W as array<u32>; W_F32 / W_F16 pick the unpacking
  const d = { ...defines, WDT: 0, WG: p.WG, RB: p.RB, UNROLL: p.UNROLL, VEC: p.VEC, SG_RED: p.SG_RED, SGS: Math.max(p.SGS, 1) };
  const e = [...entries];
  e[5] = { buffer: gpu.uniform(new Uint32Array([IN, OUT, p.U, p.TPR])) };
  return dispatch(gpu, { label: 'matmul_gemv_vec', source, defines: d }, e, p.workgroups);
}
