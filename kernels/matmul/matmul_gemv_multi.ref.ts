// CPU reference of matmul_multi: the unfused path it replaces. With a norm: h = RMSNorm(x)·w_norm (rms_norm's
// reference), then y_p (+)= act_p(h·W_pᵀ) for each part (matmul's reference); with a SwiGLU input: h = silu(x)·up
// (silu_mul's reference), then the same; without either: y_p (+)= act_p(x_p·W_pᵀ), x_p a plane of x.
import { siluMulRef } from '../elementwise/silu_mul.ref.ts';
import { rmsNormRef } from '../norm/rms_norm.ref.ts';
import { matmulRef, type Act } from './matmul.ref.ts';

export interface MultiPartRef { w: Float32Array; y: Float32Array; OUT: number; plane: number; act: Act }

/**
 * x [planes, R, IN] (R = capacity rows); part p reads plane p.plane; h [R, IN] receives the normed rows when norm is
 * given, glu.h the SwiGLU product silu(x)·glu.up when glu is.
 */
export function matmulMultiRef(x: Float32Array, norm: { w: Float32Array; eps: number; h: Float32Array } | null, parts: MultiPartRef[],
  R: number, IN: number, accumulate: boolean, glu: { up: Float32Array; h: Float32Array } | null = null): void {
  if (norm) rmsNormRef(x, norm.w, norm.h, R, IN, { eps: norm.eps });
  if (glu) siluMulRef(x, glu.up, glu.h, R * IN);
  for (const p of parts) {
    const inp = norm ? norm.h : glu ? glu.h : x.subarray(p.plane * R * IN, (p.plane + 1) * R * IN);
    matmulRef(inp, p.w, null, p.y, R, IN, p.OUT, p.act, accumulate);
  }
}
