// argmax's value order, shared by its passes (argmax.wgsl) and the head GEMV's epilogue (matmul_gemv_multi.wgsl
// ARGMAX): values compare as order-preserving u32 keys (no −∞ constant, which WGSL cannot write): −0 as +0, NaN as
// −∞. Key 0 is below every value's, so (0, index 0xffffffff) starts each reduction; ties go to the lower index.

fn argmax_key(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) == 0u) { b = 0u; }
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u) { b = 0xff800000u; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// NaN or ±Inf: exponent all ones (bit test: no x != x under fast math)
fn argmax_nonfinite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u; }

// whether (key v, index i) beats (w, j)
fn argmax_better(v: u32, i: u32, w: u32, j: u32) -> bool { return v > w || (v == w && i < j); }
