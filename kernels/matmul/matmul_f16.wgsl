// matmul_f16: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) with f16 weights and f16 activations, products in
// f32, no subgroup matrices: the arithmetic of matmul_sgmat on any adapter with shader-f16 (the CPU reference is
// matmul_f16.ref.ts). x comes split by matmul_sgmat_prep (xq: per row hi, with SPLIT lo, as f16 pairs, then 1/s);
// y = (Σ W·hi + W·lo)·(1/s), one f32 accumulator (SPLIT: f32-grade; else one product of f16(s·x)).
// Bindings: step, xq, W packed f16 pairs, bias, y, dims (IN, OUT, RW, KPAD). Dispatch: (ceil(OUT/64), ceil(R/64))
// workgroups of 256 threads, each thread a 4×4 block; K tiles of 16 staged as f16 in workgroup memory.
// Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, SPLIT.
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> xq: array<u32>;         // [R, RW]: hi pairs, (lo pairs), 1/s
@group(0) @binding(2) var<storage, read> W: array<u32>;          // [OUT, IN] f16 pairs
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // IN, OUT, RW, KPAD

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
  let RW = dims.z;
  let KPAD = dims.w;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let row0 = g.y * BM;
  if (row0 >= rows) { return; }
  let col0 = g.x * BN;
  let tx = l.x % 16u;
  let ty = l.x / 16u;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < IN; k0 += BK) {
    for (var e = l.x; e < BM * BK; e += 256u) {
      let r = e / BK;
      let c = e % BK;
      // k0 + c < KPAD always (KPAD is IN rounded up to 64; xq is zero there)
      var h = vec2<f16>(0.0h);
      var lo = vec2<f16>(0.0h);
      if (row0 + r < rows) {
        let b = (row0 + r) * RW + (k0 + c) / 2u;
        h = bitcast<vec2<f16>>(xq[b]);
#if SPLIT
        lo = bitcast<vec2<f16>>(xq[b + KPAD / 2u]);
#endif
      }
      xh[c * BM + r] = h[c % 2u];
#if SPLIT
      xl[c * BM + r] = lo[c % 2u];
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
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(al, b[j], acc[i][j]); }
#endif
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + ty + 16u * i;
    if (row >= rows) { continue; }
    let inv = bitcast<f32>(xq[row * RW + RW - 4u]);
    for (var j = 0u; j < 4u; j++) {
      let o = col0 + tx + 16u * j;
      if (o >= OUT) { continue; }
      var v = acc[i][j] * inv;
      if (HAS_BIAS) { v += bias[o]; }
      v = act(v);
      if (ACCUM) { v += y[row * OUT + o]; }
      y[row * OUT + o] = v;
    }
  }
}
