// CPU reference of matmul_multi: the unfused path it replaces. With a norm: h = RMSNorm(x)·w_norm (rms_norm's
// reference), then y_p (+)= act(h·W_pᵀ) for each part (matmul's reference); without: y_p (+)= act(x·W_pᵀ).
import { rmsNormRef } from '../norm/rms_norm.ref.ts';
import { matmulRef, type Act } from './matmul.ref.ts';

export interface MultiPartRef { w: Float32Array; y: Float32Array; OUT: number }

/** x [R, IN]; h [R, IN] receives the normed rows when norm is given. */
export function matmulMultiRef(x: Float32Array, norm: { w: Float32Array; eps: number; h: Float32Array } | null, parts: MultiPartRef[],
  R: number, IN: number, act: Act, accumulate: boolean): void {
  let inp = x;
  if (norm) { rmsNormRef(x, norm.w, norm.h, R, IN, { eps: norm.eps }); inp = norm.h; }
  for (const p of parts) matmulRef(inp, p.w, null, p.y, R, IN, p.OUT, act, accumulate);
}
