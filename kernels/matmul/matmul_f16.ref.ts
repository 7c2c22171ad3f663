// CPU reference of the f16 GEMMs (matmul_sgmat*.wgsl, matmul_f16*.wgsl), f16 rounding emulated:
// W is f16 (bf16 weights converted at load), each activation is split into x = hi + lo·2^−LO_SHIFT with hi, lo f16,
// and y = Σ W·hi + 2^−LO_SHIFT·Σ W·lo, every product exact in f32 (11 × 11 significant bits) and summed in f32.
// 'single' drops the lo product: y = Σ W·hi, about f16's 2^−11 relative error per activation.
import { applyAct, type Act } from './matmul.ref.ts';

/**
 * x − hi is at most half an ulp of hi (2^−11·|x|), so unscaled it would be an f16 subnormal for |x| < 2^−3 and
 * lose bits; scaled by 2^LO_SHIFT it is a normal f16 wherever hi is, and hi + lo carries 22 of x's 24 bits for
 * |x| in [2^−14, 65504). |x| ≥ 65504 overflows hi to ±inf (activations that large are not f16-able at all).
 */
export const LO_SHIFT = 11;

export type F16Mode = 'split' | 'single';

const f16 = Math.f16round;

const bits = new Float32Array(1), ubits = new Uint32Array(bits.buffer);

/**
 * The two f16 halves of x: hi = x with its f32 significand rounded to f16's 11 bits by integer arithmetic
 * (ties away from zero), lo = f16((x − hi)·2^LO_SHIFT). The kernels do the same: a float round trip
 * f32(f16(x)) may be folded to x by a shader compiler (lavapipe's does), which would make lo zero.
 */
export function splitF16(x: number): [number, number] {
  bits[0] = x;
  ubits[0] = (ubits[0]! + 0x1000) & 0xffffe000;
  const hi = bits[0]!;
  return [f16(hi), f16(Math.fround((x - hi) * 2 ** LO_SHIFT))];
}

/**
 * x [R, IN], w [OUT, IN] holding f16 values (as f32), bias [OUT] | null → y [R, OUT]; accumulate adds into y.
 * Sums run in f32 in index order (the GPU's order differs; both round each step to f32).
 */
export function matmulF16Ref(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array,
  R: number, IN: number, OUT: number, mode: F16Mode, act: Act = 'none', accumulate = false): void {
  const hi = new Float32Array(R * IN), lo = new Float32Array(R * IN);
  for (let i = 0; i < R * IN; i++) [hi[i], lo[i]] = mode === 'split' ? splitF16(x[i]!) : [splitF16(x[i]!)[0], 0];
  const scale = 2 ** -LO_SHIFT;
  for (let r = 0; r < R; r++) {
    for (let o = 0; o < OUT; o++) {
      let sh = 0, sl = 0;
      for (let i = 0; i < IN; i++) {
        const wv = w[o * IN + i]!;
        sh = Math.fround(sh + wv * hi[r * IN + i]!);   // f16·f16 is exact in f32
        sl = Math.fround(sl + wv * lo[r * IN + i]!);
      }
      let v = applyAct(act, Math.fround(Math.fround(sh + Math.fround(sl * scale)) + (bias ? bias[o]! : 0)));
      if (accumulate) v += y[r * OUT + o]!;
      y[r * OUT + o] = v;
    }
  }
}
