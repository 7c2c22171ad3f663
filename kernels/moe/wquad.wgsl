// Weight quads of the expert and fp8 kernels (`#include "wquad.wgsl"`): elements [g, 4q .. 4q+3] of a
// row-major [rows, C] weight bound as `W: array<u32>` (C % 4 == 0), as f32.
//   WDT 1 f32, 2 bf16, 3 f16: the packed values;
//   WDT 4 F8_E4M3: one byte each, decoded with bit operations (sign, 4-bit exponent with bias 7, 3-bit mantissa;
//   exponent 0 is subnormal m·2⁻⁹), times the block scale S[srow(g)·SC + 4q / BC] with
//   srow(g) = ⌊g / RP⌋·SRP + ⌊(g mod RP) / BR⌋ (backend.ts Fp8Data).
// Needs in the including file: W, `dims: array<vec4u, 3>` with dims[1].y = SC (scale columns) and
// dims[2] = (RP, SRP, BR, BC), and the scales `S: array<f32>` (a placeholder unless WDT 4; the kernels keep it in their
// layout with `_ = &S;`).

fn e4m3(b: u32) -> f32 {
  let m = b & 0x7fu;
  // exponent field e ≥ 1: the f32 with exponent e and mantissa m<<20, times 2^120 (f32 bias 127 → e4m3 bias 7)
  var v = bitcast<f32>(m << 20u) * bitcast<f32>(0x7b800000u);
  if (m < 8u) { v = f32(m) * 0.001953125; }
  return select(v, -v, (b & 0x80u) != 0u);
}

fn wquad(g: u32, q: u32, C: u32) -> vec4f {
#if W_FP8
  let u = W[(g * C) / 4u + q];
  let fq = dims[2];
  let srow = (g / fq.x) * fq.y + (g % fq.x) / fq.z;
  let s = S[srow * dims[1].y + (4u * q) / fq.w];
  return vec4f(e4m3(u & 0xffu), e4m3((u >> 8u) & 0xffu), e4m3((u >> 16u) & 0xffu), e4m3(u >> 24u)) * s;
#else
#if W_F32
  let b = g * C + 4u * q;
  return vec4f(bitcast<f32>(W[b]), bitcast<f32>(W[b + 1u]), bitcast<f32>(W[b + 2u]), bitcast<f32>(W[b + 3u]));
#else
  let b = (g * C) / 2u + 2u * q;
#if W_F16
  return vec4f(unpack2x16float(W[b]), unpack2x16float(W[b + 1u]));
#else
  let u0 = W[b];
  let u1 = W[b + 1u];
  return vec4f(bitcast<f32>(u0 << 16u), bitcast<f32>(u0 & 0xffff0000u), bitcast<f32>(u1 << 16u), bitcast<f32>(u1 & 0xffff0000u));
#endif
#endif
#endif
}
