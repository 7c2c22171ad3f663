// CPU reference of matmul_multi: the unfused path it replaces. With a norm: h = RMSNorm(x)·w_norm (rms_norm's
// reference), then y_p (+)= act_p(h·W_pᵀ) for each part (matmul's reference); without: y_p (+)= act_p(x_p·W_pᵀ), x_p a
// plane of x; with SwiGLU, then out = silu(y_0)·y_1 (silu_mul's reference).
import { siluMulRef } from '../elementwise/silu_mul.ref.ts';
import { rmsNormRef } from '../norm/rms_norm.ref.ts';
import { matmulRef, type Act } from './matmul.ref.ts';

export interface MultiPartRef { w: Float32Array; y: Float32Array; OUT: number; plane: number; act: Act }

/**
 * x [planes, R, IN] (R = capacity rows); part p reads plane p.plane; h [R, IN] receives the normed rows when norm is
 * given; swiglu [R, OUT] receives silu(y_0)·y_1 when given.
 */
export function matmulMultiRef(x: Float32Array, norm: { w: Float32Array; eps: number; h: Float32Array } | null, parts: MultiPartRef[],
  R: number, IN: number, accumulate: boolean, swiglu: Float32Array | null = null): void {
  if (norm) rmsNormRef(x, norm.w, norm.h, R, IN, { eps: norm.eps });
  for (const p of parts) {
    const inp = norm ? norm.h : x.subarray(p.plane * R * IN, (p.plane + 1) * R * IN);
    matmulRef(inp, p.w, null, p.y, R, IN, p.OUT, p.act, accumulate);
  }
  if (swiglu) siluMulRef(parts[0]!.y, parts[1]!.y, swiglu, R * parts[0]!.OUT);
}
