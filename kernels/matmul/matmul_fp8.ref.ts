// CPU reference of the fp8 matmul: the block-scaled F8_E4M3 weight dequantized (src/load/safetensors.ts dequantFp8),
// then the f32 matmul reference — y[r, o] (+)= act(Σ_i x[r, i]·(e4m3(W[o, i])·scale[o, i]) + bias[o]).
import type { Fp8Data } from '../../src/backend/backend.ts';
import { dequantFp8 } from '../../src/load/safetensors.ts';
import { matmulRef, type Act } from './matmul.ref.ts';

export function matmulFp8Ref(x: Float32Array, w: Fp8Data, bias: Float32Array | null, y: Float32Array,
  R: number, IN: number, OUT: number, act: Act = 'none', accumulate = false): void {
  matmulRef(x, dequantFp8(w, OUT, IN), bias, y, R, IN, OUT, act, accumulate);
}
