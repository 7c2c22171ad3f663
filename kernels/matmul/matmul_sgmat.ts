// The f16 variants of the matmul op, for f16 weights (bf16 checkpoints are converted at load where these run):
// 'sgmat' (subgroup matrices, x split into two f16 halves: f32-grade, the default from 16 rows), 'sgmat_f16'
// (subgroup matrices, one f16 product: faster, rtol 1e-3), and 'f16split' / 'f16single', the same arithmetic
// without subgroup matrices (any adapter with shader-f16; lavapipe tests the arithmetic with them).
import { F16_MATMULS, SGMAT_BY_DEFAULT, sgmatConfig, type SubgroupMatrixConfig } from '../../src/util/f16.ts';
import { knob } from '../../src/util/knobs.ts';
import { kernel, rowsOf, u32, weightDefines, type Ctx, type Launch, type Variant } from '../lib.ts';
import type { MatmulArgs } from './matmul.ts';
import { ACT, type Act } from './matmul.ref.ts';
import { LO_SHIFT } from './matmul_f16.ref.ts';
import sgmatSrc from './matmul_sgmat.wgsl' with { type: 'text' };
import f16Src from './matmul_f16.wgsl' with { type: 'text' };

export type F16Matmul = typeof F16_MATMULS[number];

const BINDINGS = ['step', 'x', 'W', 'bias', 'y', 'dims'] as const;
export const F16_KERNELS = { sgmat: kernel('matmul_sgmat', sgmatSrc, BINDINGS), f16: kernel('matmul_f16', f16Src, BINDINGS) };

/** Fewest rows for the subgroup-matrix GEMM (batched decode from 16 rows; fewer rows belong to GEMV). */
export const SGMAT_MIN_ROWS = 16;

/** WM×WN subgroups per workgroup (ONESG: one), each TM×TN result matrices; K tiles of BK. */
export interface SgmatTile { name: string; WM: number; WN: number; TM: number; TN: number; BK: number; ONESG: boolean }

/**
 * Tiles, fastest measured first: the first that fits the adapter's workgroup memory and invocations is used;
 * FLA_SGMAT_TILE picks one by name (a tile too big for the variant gives the next one down). 'wg128' / 'wg256' /
 * 'wg128x64' / 'wg64': 8 or 4 subgroups share the staged x and W tiles; 'sg64' / 'sg64x32': one subgroup per
 * workgroup, 64×64 / 64×32. The split variant keeps two accumulators a matrix, so its tiles hold half as many.
 * H200 (dawn.node 0.6.2, Vulkan), 4096³, TFLOP/s: sgmat wg128 17.5, wg64 17.2, wg128x64 16.0, sg64x32 13.9;
 * sgmat_f16 wg128 33.6, wg256 33.5, wg128k64 32.8, wg128x64 30.8, wg64 28.6, sg64x32 23.0, sg64 11.0 (f32 gemm 16.6).
 */
export const SGMAT_TILES: readonly SgmatTile[] = [
  { name: 'wg128', WM: 2, WN: 4, TM: 4, TN: 2, BK: 32, ONESG: false },     // 128×128, 64×32 a subgroup: 30 KiB split
  { name: 'wg256', WM: 2, WN: 4, TM: 4, TN: 4, BK: 32, ONESG: false },     // 128×256, 64×64 a subgroup (single product)
  { name: 'wg128k64', WM: 2, WN: 4, TM: 4, TN: 2, BK: 64, ONESG: false },  // 128×128, K tiles of 64 (single: 36 KiB)
  { name: 'wg128x64', WM: 2, WN: 2, TM: 4, TN: 2, BK: 32, ONESG: false },  // 128×64 with 4 subgroups: 20 KiB split
  { name: 'wg64', WM: 2, WN: 2, TM: 2, TN: 2, BK: 32, ONESG: false },      // 64×64: 15 KiB split
  { name: 'sg64', WM: 1, WN: 1, TM: 4, TN: 4, BK: 32, ONESG: true },       // 64×64 in one subgroup (single product)
  { name: 'sg64x32', WM: 1, WN: 1, TM: 4, TN: 2, BK: 32, ONESG: true },    // 64×32 in one subgroup (split: 16 accumulators)
];

/** Workgroup bytes: x hi (+ lo) and W staged as f16 in rows of BK + 8 (one vec4<u32> of padding); the epilogue reuses x hi's. */
export function sgmatTileBytes(m: SubgroupMatrixConfig, t: SgmatTile, split: boolean): number {
  const BM = t.WM * t.TM * m.M, BN = t.WN * t.TN * m.N, row = 2 * (t.BK + 8);
  return BM * row * (split ? 2 : 1) + BN * row;
}

/** A tile forced by fla's own scripts (scripts/bench_sgmat.ts sweeps them); FLA_SGMAT_TILE otherwise. */
let tileOverride: SgmatTile | null = null;
export function sgmatTileOverride(t: SgmatTile | null): void { tileOverride = t; }

/** The config and tile `split` uses on this adapter, or null where subgroup matrices cannot run it. */
export function sgmatPlan(c: Ctx, split: boolean): { m: SubgroupMatrixConfig; t: SgmatTile } | null {
  const A = c.adapter, m = sgmatConfig(A.subgroupMatrix);
  if (!A.f16 || !m || !A.subgroupSize || (m.M * m.N) % A.subgroupSize !== 0) return null;
  const fits = (t: SgmatTile) => t.BK % m.K === 0 && t.BK % 8 === 0 && m.N % 4 === 0
    && 4 * t.WM * t.WN * m.M * m.N <= 2 * t.WM * t.TM * m.M * (t.BK + 8)   // the epilogue's result matrices fit in x hi's memory
    && sgmatTileBytes(m, t, split) <= A.maxWorkgroupStorage && t.WM * t.WN * A.subgroupSize <= A.maxInvocations
    && t.TM * t.TN * (split ? 2 : 1) <= 16;   // accumulators: 16 matrices of 16×16 f32 are 128 registers a lane
  const named = knob('FLA_SGMAT_TILE');
  const want = named ? SGMAT_TILES.find(t => t.name === named)! : null;
  // a named tile that does not fit (e.g. sg64 for the split's 32 accumulators) gives the next smaller one that does
  const t = tileOverride ? (fits(tileOverride) ? tileOverride : null) : SGMAT_TILES.slice(want ? SGMAT_TILES.indexOf(want) : 0).find(fits) ?? null;
  return t ? { m, t } : null;
}

/** The default f16 variant: 'sgmat' for f16 weights from 16 rows where subgroup matrices run it (SGMAT_BY_DEFAULT), else none. */
export function selectF16(c: Ctx, a: MatmulArgs): F16Matmul | null {
  return SGMAT_BY_DEFAULT && a.w?.dtype === 'f16' && rowsOf(a.x, c) >= SGMAT_MIN_ROWS && sgmatPlan(c, true) ? 'sgmat' : null;
}

function defines(a: MatmulArgs, split: boolean): Record<string, number | boolean> {
  return { ACT: ACT[a.act as Act], HAS_BIAS: a.bias !== null, ACCUM: a.accumulate, ROWS_K: a.x.rows === 'k', ...weightDefines(a.w.dtype), SPLIT: split, LO_SHIFT };
}

function launch(a: MatmulArgs, c: Ctx, kind: F16Matmul): Launch {
  const [OUT, IN] = a.w.shape as [number, number];
  const split = kind === 'sgmat' || kind === 'f16split', R = rowsOf(a.x, c);
  const bind = { x: a.x, W: a.w, bias: a.bias, y: a.y, dims: u32(IN, OUT) };
  const cost = { flops: 2 * R * IN * OUT, bytes: 2 * OUT * IN + 4 * R * (IN + OUT) };
  if (kind === 'f16split' || kind === 'f16single')
    return { kernel: F16_KERNELS.f16, defines: defines(a, split), bind, cost, grid: [Math.ceil(OUT / 64), Math.ceil(R / 64), 1] };
  const p = sgmatPlan(c, split)!;
  const BM = p.t.WM * p.t.TM * p.m.M, BN = p.t.WN * p.t.TN * p.m.N;
  return {
    kernel: F16_KERNELS.sgmat, bind, cost, grid: [Math.ceil(OUT / BN), Math.ceil(R / BM), 1],
    defines: { ...defines(a, split), SM_M: p.m.M, SM_N: p.m.N, SM_K: p.m.K, WM: p.t.WM, WN: p.t.WN, TM: p.t.TM, TN: p.t.TN, BK: p.t.BK,
      ONESG: p.t.ONESG, SG: c.adapter.subgroupSize },
  };
}

const variant = (kind: F16Matmul): Variant<MatmulArgs> => ({
  supports: (a, c) => a.w.dtype === 'f16' && c.adapter.f16 && (kind.startsWith('f16') || sgmatPlan(c, kind === 'sgmat') !== null),
  launches: (a, c) => [launch(a, c, kind)],
});

export const F16_VARIANTS: Record<F16Matmul, Variant<MatmulArgs>> = {
  sgmat: variant('sgmat'), sgmat_f16: variant('sgmat_f16'), f16split: variant('f16split'), f16single: variant('f16single'),
};
