// matmul_fp8_gemm: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) for many rows (prefill), W an F8_E4M3 matrix
// [OUT, IN] with block scales decoded by wquad() (kernels/moe/wquad.wgsl) while staging each tile.
// W's rows from dims[0].z on (R0: a row range of a stacked weight, its scale rows with it; 0 otherwise).
// Bindings as matmul_fp8_gemv. Dispatch: (⌈OUT/64⌉, ⌈R/64⌉) workgroups of 256 threads, 64×64 output tiles, a 4×4
// block per thread, K steps of 16 staged in workgroup memory (as matmul_gemm). Defines: ACT, HAS_BIAS, ACCUM, ROWS_K.
#include "common.wgsl"
#include "act.wgsl"
#include "wquad.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;        // [R, IN/4]
@group(0) @binding(2) var<storage, read> W: array<u32>;          // [OUT, IN] bytes
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: array<vec4u, 3>;
@group(0) @binding(6) var<storage, read> S: array<f32>;

const BM = 64u;
const BN = 64u;
const BK = 16u;
var<workgroup> xs: array<f32, BK * BM>;
var<workgroup> ws: array<f32, BK * BN>;

@compute @workgroup_size(256)
fn matmul_fp8_gemm(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
  let IN = dims[0].x;
  let OUT = dims[0].y;
  let R0 = dims[0].z;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let row0 = g.y * BM;
  if (row0 >= rows) { return; }
  let col0 = g.x * BN;
  let tx = l.x % 16u;
  let ty = l.x / 16u;
  let sr = l.x / 4u;
  let sq = l.x % 4u;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < IN; k0 += BK) {
    let kq = k0 / 4u + sq;
    var xv = vec4f(0.0);
    if (row0 + sr < rows && 4u * kq < IN) { xv = x[(row0 + sr) * (IN / 4u) + kq]; }
    var wv = vec4f(0.0);
    if (col0 + sr < OUT && 4u * kq < IN) { wv = wquad(R0 + col0 + sr, kq, IN); }
    for (var c = 0u; c < 4u; c++) {
      xs[(4u * sq + c) * BM + sr] = xv[c];
      ws[(4u * sq + c) * BN + sr] = wv[c];
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
