// The f16 variants of the matmul op (f16 weights, converted from bf16 at load): 'sgmat' (subgroup matrices,
// x split into two f16 halves: f32-grade), 'sgmat_f16' (subgroup matrices, one f16 product: faster, looser),
// and 'f16split' / 'f16single', the same arithmetic without subgroup matrices (any shader-f16 adapter).
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { F16_MATMULS, sgmatConfig, sgmatTile, type SgmatTile } from '../../src/gpu/f16.ts';
import { dispatch, type StepCtx } from '../../src/gpu/launch.ts';
import type { Binding } from '../../src/gpu/device.ts';
import { LO_SHIFT } from './matmul_f16.ref.ts';
import sgmatSrc from './matmul_sgmat.wgsl' with { type: 'text' };
import f16Src from './matmul_f16.wgsl' with { type: 'text' };

export type F16Matmul = typeof F16_MATMULS[number];

export function isF16Matmul(k: string): k is F16Matmul {
  return (F16_MATMULS as readonly string[]).includes(k);
}

/** Fewest rows for the subgroup-matrix GEMM (batched decode from 16 rows; fewer rows belong to GEMV). */
export const SGMAT_MIN_ROWS = 16;

/** Why `kind` cannot run on this adapter, or null when it can. */
export function f16Unavailable(gpu: Gpu, kind: F16Matmul): string | null {
  if (!gpu.f16) return 'the adapter has no shader-f16';
  if (kind === 'sgmat' || kind === 'sgmat_f16') {
    const c = sgmatConfig(gpu);
    if (!c) return 'the adapter offers no f16 subgroup-matrix config with f32 results (see fla devices)';
    if (!sgmatTile(gpu, c, kind === 'sgmat')) return `no tile fits ${gpu.maxWorkgroupStorage} bytes of workgroup memory`;
  }
  return null;
}

/** The default f16 variant for `rows` rows of f16 weights: 'sgmat' where subgroup matrices are, else none. */
export function selectF16(gpu: Gpu, rows: number): F16Matmul | null {
  return rows >= SGMAT_MIN_ROWS && f16Unavailable(gpu, 'sgmat') === null ? 'sgmat' : null;
}

/** One dispatch of an f16 variant; `entries` and `defines` as the matmul op builds them, `tile` to override (bench). */
export function buildF16(gpu: Gpu, s: StepCtx, kind: F16Matmul, rows: number, OUT: number,
  defines: Record<string, number | boolean>, entries: Binding[], tile?: SgmatTile): Promise<Dispatch> {
  const split = kind === 'sgmat' || kind === 'f16split';
  if (kind === 'f16split' || kind === 'f16single')
    return dispatch(gpu, { label: 'matmul_f16', source: f16Src, defines: { ...defines, SPLIT: split, LO_SHIFT } },
      entries, [Math.ceil(OUT / 64), Math.ceil(rows / 64), 1]);
  const c = sgmatConfig(gpu)!;
  const t = sgmatTile(gpu, c, split, tile);
  if (!t) throw new Error(`matmul ${kind}: tile ${JSON.stringify(tile)} does not fit this adapter`);
  const BM = t.WM * t.TM * c.M, BN = t.WN * t.TN * c.N;
  return dispatch(gpu, {
    label: 'matmul_sgmat', source: sgmatSrc,
    defines: { ...defines, SPLIT: split, LO_SHIFT, SM_M: c.M, SM_N: c.N, SM_K: c.K, ...t, SG: gpu.summary.subgroupMinSize },
  }, entries, [Math.ceil(OUT / BN), Math.ceil(rows / BM), 1]);
}
