// matmul_gemm: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) for many rows (prefill): 64×64 output tiles.
// Bindings: as matmul_gemv (dims uniform = IN (even), OUT). Dispatch: (ceil(OUT/64), ceil(R/64)) workgroups of 256 threads, each thread a 4×4 block;
// K tiles of 16 staged in workgroup memory. Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, WDT. f32 accumulate.
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, IN]
@group(0) @binding(2) var<storage, read> W: array<u32>;          // [OUT, IN] packed
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // IN, OUT

const BM = 64u;
const BN = 64u;
const BK = 16u;
var<workgroup> xs: array<f32, BK * BM>;   // [BK][BM]
var<workgroup> ws: array<f32, BK * BN>;   // [BK][BN]

@compute @workgroup_size(256)
fn matmul_gemm(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
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
  for (var k0 = 0u; k0 < IN; k0 += BK) {
    for (var e = l.x; e < BM * BK; e += 256u) {
      let r = e / BK;
      let c = e % BK;
      var v = 0.0;
      if (row0 + r < rows && k0 + c < IN) { v = x[(row0 + r) * IN + k0 + c]; }
      xs[c * BM + r] = v;
    }
    for (var e = l.x; e < BN * BK / 2u; e += 256u) {
      let n = e / (BK / 2u);
      let cp = e % (BK / 2u);
      let k = k0 + 2u * cp;
      var v = vec2f(0.0);
      if (col0 + n < OUT && k < IN) { v = wpair(((col0 + n) * IN + k) / 2u); }
      ws[(2u * cp) * BN + n] = v.x;
      ws[(2u * cp + 1u) * BN + n] = v.y;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = xs[kk * BM + ty + 16u * i]; b[i] = ws[kk * BN + tx + 16u * i]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
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
      if (HAS_BIAS) { v += bias[o]; }
      v = act(v);
      if (ACCUM) { v += y[row * OUT + o]; }
      y[row * OUT + o] = v;
    }
  }
}
