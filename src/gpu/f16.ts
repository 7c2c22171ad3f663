// f16 on the GPU: which subgroup-matrix config and tiles the f16 GEMM uses, whether weights are converted
// to f16 at load, and the bf16 → f16 conversion itself (exact for every bf16 value in f16's range).
import type { Gpu, SubgroupMatrixConfig } from './device.ts';

/** Matmul variants that read f16 weights only (kernels/matmul/matmul_sgmat*, matmul_f16*). */
export const F16_MATMULS = ['sgmat', 'sgmat_f16', 'f16split', 'f16single'] as const;

/** The f16 × f16 → f32 subgroup-matrix config the GEMM tiles with: 16×16×16 if offered, else the largest. */
export function sgmatConfig(gpu: Pick<Gpu, 'subgroupMatrix' | 'summary'>): SubgroupMatrixConfig | null {
  if (gpu.summary.subgroupMinSize !== gpu.summary.subgroupMaxSize || !gpu.summary.subgroupMinSize) return null;   // lanes → subgroup mapping must be fixed
  const ok = gpu.subgroupMatrix.filter(c => c.componentType === 'f16' && c.resultComponentType === 'f32');
  ok.sort((a, b) => Number(b.M === 16 && b.N === 16 && b.K === 16) - Number(a.M === 16 && a.N === 16 && a.K === 16) || b.M * b.N * b.K - a.M * a.N * a.K);
  return ok[0] ?? null;
}

export interface SgmatTile { WM: number; WN: number; TM: number; TN: number; BK: number }

/** Workgroup bytes of a tile: x hi (+ lo) and W staged as f16, one f32 result matrix per subgroup. */
export function sgmatTileBytes(c: SubgroupMatrixConfig, t: SgmatTile, split: boolean): number {
  const BM = t.WM * t.TM * c.M, BN = t.WN * t.TN * c.N;
  return 2 * BM * t.BK * (split ? 2 : 1) + 2 * BN * t.BK + 4 * t.WM * t.WN * c.M * c.N;
}

/** Tiles from big to small; the first that fits the adapter's workgroup memory and invocations is used. */
export const SGMAT_TILES: SgmatTile[] = [
  { WM: 2, WN: 4, TM: 4, TN: 2, BK: 32 },   // 128×128 with 16×16 matrices: 32 KiB split, 24 KiB single
  { WM: 2, WN: 2, TM: 4, TN: 2, BK: 32 },   // 128×64
  { WM: 2, WN: 2, TM: 2, TN: 2, BK: 32 },   // 64×64: 16 KiB
];

export function sgmatTile(gpu: Gpu, c: SubgroupMatrixConfig, split: boolean, forced?: SgmatTile): SgmatTile | null {
  const fits = (t: SgmatTile) => t.BK % c.K === 0 && (c.M * c.N) % gpu.summary.subgroupMinSize === 0
    && sgmatTileBytes(c, t, split) <= gpu.maxWorkgroupStorage && t.WM * t.WN * gpu.summary.subgroupMinSize <= gpu.maxInvocations;
  if (forced) return fits(forced) ? forced : null;
  return SGMAT_TILES.find(fits) ?? null;
}

/**
 * Whether matrix weights are converted to f16 at load: where the f16 GEMM on subgroup matrices runs, or where
 * FLA_KERNEL_MATMUL forces an f16 variant (the f16 non-matrix variants are how lavapipe tests the arithmetic).
 */
export function wantsF16Weights(gpu: Gpu, forced = process.env.FLA_KERNEL_MATMUL): boolean {
  if (!gpu.f16) return false;
  if (forced && (F16_MATMULS as readonly string[]).includes(forced)) return true;
  if (forced) return false;
  return sgmatConfig(gpu) !== null;
}

/** What bf16 → f16 conversion of one tensor did: values that overflow f16 (tensor must stay bf16), values rounded (f16 subnormals). */
export interface F16Conversion { overflow: number; rounded: number }

let table: { bits: Uint16Array; kind: Uint8Array } | null = null;

/** bf16 bits → f16 bits for all 65536 patterns, with 0 = exact, 1 = rounded (below f16's normal range), 2 = overflow (|v| > 65504, inf, nan). */
function bf16ToF16Table() {
  if (table) return table;
  const bits = new Uint16Array(65536), kind = new Uint8Array(65536);
  const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
  const h = new Float16Array(1), hu = new Uint16Array(h.buffer);
  for (let b = 0; b < 65536; b++) {
    u32[0] = b << 16;
    const v = f32[0]!;
    h[0] = v;
    bits[b] = hu[0]!;
    kind[b] = !Number.isFinite(v) || Math.abs(v) > 65504 ? 2 : h[0] !== v ? 1 : 0;
  }
  return (table = { bits, kind });
}

/** Convert bf16 bits to f16 bits (exact for every bf16 value in f16's range; subnormals rounded to nearest). */
export function bf16ToF16(src: Uint16Array): { data: Uint16Array } & F16Conversion {
  const { bits, kind } = bf16ToF16Table();
  const out = new Uint16Array(src.length);
  let overflow = 0, rounded = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    out[i] = bits[b]!;
    const k = kind[b]!;
    if (k) { if (k === 2) overflow++; else rounded++; }
  }
  return { data: out, overflow, rounded };
}
