// f16 facts shared by the GPU backend (which weights it converts at load) and the matmul op (which variant runs):
// the f16 variants' names, the subgroup-matrix config the GEMM tiles with, and bf16 → f16 conversion
// (exact for every bf16 value in f16's range).

import { knob } from './knobs.ts';
import { log } from './log.ts';

/** One subgroup-matrix shape an adapter offers (chromium-experimental-subgroup-matrix). */
export interface SubgroupMatrixConfig { componentType: string; resultComponentType: string; M: number; N: number; K: number }

/**
 * Whether the matmul op picks 'sgmat' on its own where the adapter has f16 subgroup matrices (and the GPU backend
 * then converts bf16 weights to f16 at load): the default, FLA_TENSOR_CORES=0 turns it off. The split arithmetic is
 * f32-grade: its error grew with K on the tensor cores (1.3e-5 of the f32 GEMM at K 4096, truncating accumulation)
 * until the accumulators were restarted every SGMAT_FLUSH_K (kernels/matmul/matmul_sgmat.ts); the CPU model of that
 * is within 1–2.3× of the f32 path on every fixture (scripts/sgmat_golden.ts), and the H200 measured the same
 * (llama-tiny 1.15e-6 against 8.0e-7, qwen3_next-tiny 8.7e-7 against 5.6e-7; K 4096 against f64: 6.9e-7, the f32
 * GEMM 2.1e-6). H200 (dawn.node 0.6.2, 2026-12-02): llama-1b pp512 9.3 k t/s against 4.6 k with the f32 GEMM
 * (10.3 k before the restarts), batch-64 decode 5.1 k against 2.3 k; 8.7 k with the thin tiles and split-K of
 * sgmatPlan (engineer gemm's GPU.sh, 06:00, one repetition).
 */
export function sgmatByDefault(): boolean { return knob('FLA_TENSOR_CORES') !== '0'; }

let warned = false;
/**
 * Whether the GPU backend runs the tensor-core GEMM (and so converts bf16 matrices to f16 at load) on an adapter with
 * shader-f16 `f16` and these subgroup-matrix configs: by default where an f16 → f32 config exists; FLA_TENSOR_CORES=0
 * never; =1 insists, with one warning where the adapter cannot (no shader-f16 or no such config: bun-webgpu on NVIDIA,
 * lavapipe, see `fla devices`).
 */
export function tensorCores(f16: boolean, configs: readonly SubgroupMatrixConfig[] | undefined): boolean {
  const ok = f16 && sgmatConfig(configs) !== null;
  if (!ok && knob('FLA_TENSOR_CORES') === '1' && !warned) {
    warned = true;
    log.warn(`FLA_TENSOR_CORES=1: this adapter has no ${f16 ? 'f16 subgroup-matrix config with f32 results' : 'shader-f16'} (see fla devices); GEMMs stay on the f32 path`);
  }
  return ok && sgmatByDefault();
}

/** Matmul variants that read f16 weights only (kernels/matmul/matmul_sgmat.ts). */
export const F16_MATMULS = ['sgmat', 'sgmat_f16', 'f16split', 'f16single', 'sgmv'] as const;

/** The f16 × f16 → f32 config the subgroup-matrix GEMM tiles with: 16×16×16 if offered, else the largest. */
export function sgmatConfig(configs: readonly SubgroupMatrixConfig[] | undefined): SubgroupMatrixConfig | null {
  const ok = (configs ?? []).filter(c => c.componentType === 'f16' && c.resultComponentType === 'f32');
  const is16 = (c: SubgroupMatrixConfig) => Number(c.M === 16 && c.N === 16 && c.K === 16);
  ok.sort((a, b) => is16(b) - is16(a) || b.M * b.N * b.K - a.M * a.N * a.K);
  return ok[0] ?? null;
}

/**
 * What bf16 → f16 conversion of one tensor did: values that overflow f16 (tensor must stay bf16), values rounded
 * (below f16's normal range), and rel = √(ΣΔ² / Σw²), the rounding's size against the tensor's (NaN with overflow).
 */
export interface F16Conversion { overflow: number; rounded: number; rel: number }

/**
 * Largest `rel` a tensor may have to be multiplied as f16 (F16_MAX_REL = 2^-22, a quarter of the f32 GEMM's own
 * error on the fixtures). Random-init and trained matrices round a few values in 10^4 by ≤ 2^-25 each: rel ~1e-8
 * (llama-tiny, kjv-llama, kjv-rwkv7). rwkv7-tiny's embeddings (uniform ±1e-4) round 5 % of their values: rel ~1e-4,
 * and as f16 they moved that fixture's logits by 3.3e-5 on the H200 (tolerance 2.3e-6).
 */
export const F16_MAX_REL = 2 ** -22;

/** Why a converted tensor must stay bf16 (the f32 path), or null where its f16 copy is exact enough. */
export function f16Refused(c: F16Conversion): string | null {
  if (c.overflow) return `${c.overflow} values beyond f16's range`;
  if (c.rel > F16_MAX_REL) return `${c.rounded} values below f16's normal range, rounded by ${c.rel.toExponential(1)} of the tensor (more than ${F16_MAX_REL.toExponential(1)})`;
  return null;
}

let table: { bits: Uint16Array; kind: Uint8Array; d2: Float64Array; v2: Float64Array } | null = null;

/** bf16 bits → f16 bits for all 65536 patterns, with 0 = exact, 1 = rounded (below f16's normal range), 2 = overflow (|v| > 65504, inf, nan). */
function bf16ToF16Table() {
  if (table) return table;
  const bits = new Uint16Array(65536), kind = new Uint8Array(65536), d2 = new Float64Array(65536), v2 = new Float64Array(65536);
  const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
  const h = new Float16Array(1), hu = new Uint16Array(h.buffer);
  for (let b = 0; b < 65536; b++) {
    u32[0] = b << 16;
    const v = f32[0]!;
    h[0] = v;
    bits[b] = hu[0]!;
    kind[b] = !Number.isFinite(v) || Math.abs(v) > 65504 ? 2 : h[0] !== v ? 1 : 0;
    if (kind[b] !== 2) { d2[b] = (h[0]! - v) ** 2; v2[b] = v * v; }
  }
  return (table = { bits, kind, d2, v2 });
}

/** Convert bf16 bits to f16 bits (exact for every bf16 value in f16's range; subnormals rounded to nearest). */
export function bf16ToF16(src: Uint16Array): { data: Uint16Array } & F16Conversion {
  const { bits, kind, d2, v2 } = bf16ToF16Table();
  const out = new Uint16Array(src.length);
  let overflow = 0, rounded = 0, e2 = 0, w2 = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    out[i] = bits[b]!;
    w2 += v2[b]!;
    const k = kind[b]!;
    if (k) { if (k === 2) overflow++; else { rounded++; e2 += d2[b]!; } }
  }
  return { data: out, overflow, rounded, rel: overflow ? NaN : w2 > 0 ? Math.sqrt(e2 / w2) : 0 };
}
