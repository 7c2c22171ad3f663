// matmul_sgmat_reduce: the second pass of matmul_sgmat split over K (SPLITK): y[r, o] (+)= act((Σ_z part[z, r, o])·(1/s_r)
// + bias[o]), the SK partial sums of slices of K that matmul_sgmat wrote unscaled, 1/s_r from the pre-pass row of xq.
// Bindings: step, part [SK planes of cap × OUT] (a scratch), xq (u32 words, RW a row), bias, y, dims (OUT, RW, SK).
// Dispatch: (ceil(OUT/256), R) workgroups of 256. Defines: ACT, HAS_BIAS, ACCUM; SCALED (the fused GEMM's planes, scaled
// already: xq is then bound to x, which nothing reads, so that one layout serves both).
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read> xq: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> dims: vec4u;   // OUT, RW, SK

@compute @workgroup_size(256)
fn matmul_sgmat_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) g: vec3u) {
  let OUT = dims.x;
  let RW = dims.y;
  let SK = dims.z;
  let row = g.y;
  let o = gid.x;
  if (row >= step.n || o >= OUT) { return; }
  var v = 0.0;
  for (var z = 0u; z < SK; z++) { v += part[z * step.cap * OUT + row * OUT + o]; }
  var r = v;
  if (!SCALED) { r *= bitcast<f32>(xq[row * RW + RW - 4u]); }
  if (HAS_BIAS) { r += bias[o]; }
  r = act(r);
  if (ACCUM) { r += y[row * OUT + o]; }
  y[row * OUT + o] = r;
}
