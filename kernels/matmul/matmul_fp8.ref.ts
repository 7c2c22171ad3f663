// CPU reference of the fp8 matmul: y[r, o] (+)= act(Σ_i x[r, i]·Ŵ[o, i] + bias[o]) with Ŵ the dequantized weight,
// Ŵ[o, i] = e4m3(W[o, i]) · scale[srow(o), ⌊i / bc⌋] (src/load/safetensors.ts dequantFp8, layout in backend.ts
// Fp8Data). The CPU backend stores fp8 weights as Ŵ, so this is the f32 matmul of what it holds.
import { matmulRef, type Act } from './matmul.ref.ts';

/** x [R, IN], wDeq [OUT, IN] (dequantized), bias [OUT] | null → y [R, OUT]. */
export function matmulFp8Ref(x: Float32Array, wDeq: Float32Array, bias: Float32Array | null, y: Float32Array,
  R: number, IN: number, OUT: number, act: Act = 'none', accumulate = false): void {
  matmulRef(x, wDeq, bias, y, R, IN, OUT, act, accumulate);
}
