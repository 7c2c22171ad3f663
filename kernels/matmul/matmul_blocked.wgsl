// matmul_blocked: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]), each thread a 4×4 block straight from global
// memory with no workgroup memory or barriers — the fast shape for CPU adapters (llvmpipe), where caches do
// what workgroup tiling does on a GPU.
// Bindings: as matmul_gemv. Dispatch: 64 threads per workgroup, one thread per 4×4 block of (rows × OUT), 2-D grid.
// Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, WDT. Runtime dims: IN (even), OUT. Accumulates in f32.
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, IN]
@group(0) @binding(2) var<storage, read> W: array<u32>;          // [OUT, IN] packed
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // IN, OUT

@compute @workgroup_size(64)
fn matmul_blocked(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let IN = dims.x;
  let OUT = dims.y;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let ob = (OUT + 3u) / 4u;
  let i = gid.x + gid.y * ng.x * 64u;
  let r0 = (i / ob) * 4u;
  let o0 = (i % ob) * 4u;
  if (r0 >= rows) { return; }
  var acc: array<vec4f, 4>;   // acc[row][out]
  var xr: array<u32, 4>;
  var wr: array<u32, 4>;
  for (var a = 0u; a < 4u; a++) { xr[a] = min(r0 + a, rows - 1u) * IN; wr[a] = min(o0 + a, OUT - 1u) * (IN / 2u); }
  for (var p = 0u; p < IN / 2u; p++) {
    let w = mat4x2f(wpair(wr[0] + p), wpair(wr[1] + p), wpair(wr[2] + p), wpair(wr[3] + p));
    for (var a = 0u; a < 4u; a++) {
      let xv = vec2f(x[xr[a] + 2u * p], x[xr[a] + 2u * p + 1u]);
      acc[a] += xv * w;
    }
  }
  for (var a = 0u; a < 4u; a++) {
    let row = r0 + a;
    if (row >= rows) { break; }
    for (var b = 0u; b < 4u; b++) {
      let o = o0 + b;
      if (o >= OUT) { break; }
      var v = acc[a][b];
      if (HAS_BIAS) { v += bias[o]; }
      v = act(v);
      if (ACCUM) { v += y[row * OUT + o]; }
      y[row * OUT + o] = v;
    }
  }
}
