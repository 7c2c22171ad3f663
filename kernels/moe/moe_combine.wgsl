// moe_combine: y[t, o] += Σ_j sel[t, K + j] · yk[t·K + j, o], j = 0 … K−1 in order (the routed experts' outputs of the
// grouped GEMM, weighted and added to the residual).
// Bindings: step; yk [N·K, C] f32; sel [N, 2K] f32; y [N, C] f32; dims (C, K). Dispatch: one thread per (t, o), 2-D.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> yk: array<f32>;
@group(0) @binding(2) var<storage, read> sel: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> dims: vec4u;                    // C, K

@compute @workgroup_size(256)
fn moe_combine(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let K = dims.y;
  let i = gid.x + gid.y * ng.x * 256u;
  if (i >= step.n * C) { return; }
  let t = i / C;
  let o = i % C;
  var s = 0.0;
  for (var j = 0u; j < K; j++) { s += sel[t * 2u * K + K + j] * yk[(t * K + j) * C + o]; }
  y[i] += s;
}
