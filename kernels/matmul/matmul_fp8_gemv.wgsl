// matmul_fp8_gemv: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) for few rows r (decode) with W an F8_E4M3 matrix
// [OUT, IN] and its block scales, decoded in registers by wquad() (kernels/moe/wquad.wgsl): bandwidth-bound
// on one byte per weight.
// Bindings: step; x [R, IN] f32; W [OUT, IN] bytes; bias [OUT] f32 (dummy if !HAS_BIAS); y [R, OUT] f32;
// dims (IN, OUT), (0, SC), fq; S (scales). IN % 4 == 0.
// Dispatch: RPW output rows per workgroup of TPR·RPW threads (2-D over row blocks), z over blocks of RMAX input rows;
// TPR lanes stride over IN in quads, then a workgroup tree reduction. Defines: TPR, RPW, RMAX, ACT, HAS_BIAS, ACCUM,
// ROWS_K. f32 accumulate.
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

var<workgroup> red: array<f32, TPR * RPW * RMAX>;

@compute @workgroup_size(TPR * RPW)
fn matmul_fp8_gemv(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let IN = dims[0].x;
  let OUT = dims[0].y;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let lane = l.x % TPR;
  let sub = l.x / TPR;
  let o = (g.x + g.y * ng.x) * RPW + sub;
  let r0 = g.z * RMAX;
  var acc: array<f32, RMAX>;
  if (o < OUT) {
    for (var q = lane; q < IN / 4u; q += TPR) {
      let wv = wquad(o, q, IN);
      for (var r = 0u; r < RMAX; r++) {
        if (r0 + r < rows) { acc[r] += dot(wv, x[(r0 + r) * (IN / 4u) + q]); }
      }
    }
  }
  for (var r = 0u; r < RMAX; r++) { red[l.x * RMAX + r] = acc[r]; }
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var r = 0u; r < RMAX; r++) { red[l.x * RMAX + r] += red[(l.x + s) * RMAX + r]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && o < OUT) {
    for (var r = 0u; r < RMAX; r++) {
      let row = r0 + r;
      if (row < rows) {
        var v = red[l.x * RMAX + r];
        if (HAS_BIAS) { v += bias[o]; }
        v = act(v);
        if (ACCUM) { v += y[row * OUT + o]; }
        y[row * OUT + o] = v;
      }
    }
  }
}
