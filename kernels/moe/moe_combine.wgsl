// moe_combine: y[t, o] += Σ_j sel[t, K + j] · yk[t·K + j, o], j = 0 … K−1 in order (the routed experts' outputs of the
// grouped GEMM, weighted and added to the residual); SHARED: + sel[t, 2K] · ys[t, o] (the shared expert's output).
// Bindings: step; yk [N·K, C] f32; ys [N, C] f32 (placeholder unless SHARED); sel [N, SW] f32; y [N, C] f32;
// dims (C, K, SW). Dispatch: one thread per (t, o), 2-D.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> yk: array<f32>;
@group(0) @binding(2) var<storage, read> ys: array<f32>;
@group(0) @binding(3) var<storage, read> sel: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> dims: vec4u;                    // C, K, SW

@compute @workgroup_size(256)
fn moe_combine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let K = dims.y;
  let i = gid.x + gid.y * ng.x * 256u;
  if (i >= step.n * C) { return; }
  let t = i / C;
  let o = i % C;
  let SW = dims.z;
  _ = &ys;
  var s = 0.0;
  for (var j = 0u; j < K; j++) { s += sel[t * SW + K + j] * yk[(t * K + j) * C + o]; }
  if (SHARED) { s += sel[t * SW + 2u * K] * ys[i]; }
  y[i] += s;
}
