// matmul_f16: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) with f16 weights and f16 activations, products in
// f32, no subgroup matrices: the arithmetic of matmul_sgmat on any adapter with shader-f16 (the CPU reference is
// matmul_f16.ref.ts). SPLIT: x = hi + lo·2^−LO_SHIFT, two products (f32-grade); else one product of f16(x).
// Bindings: as matmul_gemm, W packed f16 pairs. Dispatch: (ceil(OUT/64), ceil(R/64)) workgroups of 256 threads,
// each thread a 4×4 block; K tiles of 16 staged as f16 in workgroup memory. Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, SPLIT, LO_SHIFT.
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, IN]
@group(0) @binding(2) var<storage, read> W: array<u32>;          // [OUT, IN] f16 pairs
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // IN, OUT

const BM = 64u;
const BN = 64u;
const BK = 16u;
var<workgroup> xh: array<f16, BK * BM>;   // [BK][BM]
#if SPLIT
var<workgroup> xl: array<f16, BK * BM>;
#endif
var<workgroup> ws: array<f16, BK * BN>;   // [BK][BN]

@compute @workgroup_size(256)
fn matmul_f16(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
  let IN = dims.x;
  let OUT = dims.y;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let row0 = g.y * BM;
  if (row0 >= rows) { return; }
  let col0 = g.x * BN;
  let tx = l.x % 16u;
  let ty = l.x / 16u;
  var acc: array<array<f32, 4>, 4>;
#if SPLIT
  var accl: array<array<f32, 4>, 4>;
#endif
  for (var k0 = 0u; k0 < IN; k0 += BK) {
    for (var e = l.x; e < BM * BK; e += 256u) {
      let r = e / BK;
      let c = e % BK;
      var v = 0.0;
      if (row0 + r < rows && k0 + c < IN) { v = x[(row0 + r) * IN + k0 + c]; }
      // hi: v rounded to f16's 11 significant bits in integers (no f32(f16(v)) round trip, which compilers may fold away)
      let h32 = bitcast<f32>((bitcast<u32>(v) + 0x1000u) & 0xffffe000u);
      let hi = f16(h32);
      xh[c * BM + r] = hi;
#if SPLIT
      xl[c * BM + r] = f16((v - h32) * f32(1u << LO_SHIFT));
#endif
    }
    for (var e = l.x; e < BN * BK / 2u; e += 256u) {
      let n = e / (BK / 2u);
      let cp = e % (BK / 2u);
      let k = k0 + 2u * cp;
      var v = vec2<f16>(0.0h);
      if (col0 + n < OUT && k < IN) { v = bitcast<vec2<f16>>(W[((col0 + n) * IN + k) / 2u]); }
      ws[(2u * cp) * BN + n] = v.x;
      ws[(2u * cp + 1u) * BN + n] = v.y;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var b: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) { b[j] = f32(ws[kk * BN + tx + 16u * j]); }
      for (var i = 0u; i < 4u; i++) {
        let a = f32(xh[kk * BM + ty + 16u * i]);
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a, b[j], acc[i][j]); }
#if SPLIT
        let al = f32(xl[kk * BM + ty + 16u * i]);
        for (var j = 0u; j < 4u; j++) { accl[i][j] = fma(al, b[j], accl[i][j]); }
#endif
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + ty + 16u * i;
    if (row >= rows) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let o = col0 + tx + 16u * j;
      if (o >= OUT) { continue; }
      var v = acc[i][j];
#if SPLIT
      v += accl[i][j] / f32(1u << LO_SHIFT);
#endif
      if (HAS_BIAS) { v += bias[o]; }
      v = act(v);
      if (ACCUM) { v += y[row * OUT + o]; }
      y[row * OUT + o] = v;
    }
  }
}
