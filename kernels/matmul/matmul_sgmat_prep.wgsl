// matmul_sgmat_prep: the f16 GEMMs' activation pre-pass (matmul_sgmat, matmul_f16). One workgroup a row r of x:
// a power of two s = 2^k puts the row's largest |x| in [2^13, 2^14), then each v = s·x becomes hi = f16(v) (11
// significant bits, rounded in integers: a float round trip f32(f16(v)) may be folded away by a compiler) and, with
// SPLIT, lo = f16(v − hi) (the next 11 bits; lo is below f16's normal range only where |v| < 2^−3, 2^−16 of the row's
// largest, so what it loses there is ≤ 2^−39 of that). The GEMMs accumulate W·hi + W·lo in one f32 accumulator and
// scale the sum by 1/s (exact). CPU reference: matmul_f16.ref.ts (splitRow).
// xq row r (RW u32 words): hi as f16 pairs [KPAD/2 words], with SPLIT lo [KPAD/2], then 1/s as f32 and 3 zero words;
// elements IN..KPAD are zero (KPAD: IN rounded up to 64, so a GEMM's K tiles never read past a row's zeros).
// Bindings: step, x [R, IN] f32, xq [R, RW] (a scratch), dims (IN, RW, KPAD). Dispatch: grid(R) workgroups of 256.
// Defines: ROWS_K, SPLIT.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;
@group(0) @binding(3) var<uniform> dims: vec4u;   // IN, RW, KPAD

var<workgroup> red: array<f32, 256>;

// v rounded to f16's 11 significant bits (ties away from zero), as f32
fn hi11(v: f32) -> f32 { return bitcast<f32>((bitcast<u32>(v) + 0x1000u) & 0xffffe000u); }

@compute @workgroup_size(256)
fn matmul_sgmat_prep(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let IN = dims.x;
  let RW = dims.y;
  let KPAD = dims.z;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let r = g.x + g.y * ng.x;
  if (r >= rows) { return; }
  var m = 0.0;
  for (var i = t; i < IN; i += 256u) { m = max(m, abs(x[r * IN + i])); }
  red[t] = m;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (t < h) { red[t] = max(red[t], red[t + h]); }
    workgroupBarrier();
  }
  // m in [2^e, 2^(e+1)): k = 13 − e, clamped so that s and 1/s stay normal; a zero or non-finite row keeps s = 1
  let eb = (bitcast<u32>(red[0]) >> 23u) & 0xffu;
  var k = 0i;
  if (eb != 0u && eb != 255u) { k = clamp(13i - (i32(eb) - 127i), -100i, 100i); }
  let s = bitcast<f32>(u32(127i + k) << 23u);
  let base = r * RW;
  for (var p = t; p < KPAD / 2u; p += 256u) {
    let i = 2u * p;
    var v = vec2f(0.0);
    if (i < IN) { v.x = x[r * IN + i] * s; }
    if (i + 1u < IN) { v.y = x[r * IN + i + 1u] * s; }
    let h = vec2f(hi11(v.x), hi11(v.y));
    xq[base + p] = bitcast<u32>(vec2<f16>(f16(h.x), f16(h.y)));
#if SPLIT
    xq[base + KPAD / 2u + p] = bitcast<u32>(vec2<f16>(f16(v.x - h.x), f16(v.y - h.y)));
#endif
  }
  if (t < 4u) { xq[base + RW - 4u + t] = select(0u, u32(127i - k) << 23u, t == 0u); }
}
