// silu_mul: y[i] = silu(a[i]) · b[i] over [R, C] (SwiGLU).
// Bindings: step uniform; a [R, C]; b [R, C]; y [R, C] f32. Dispatch: one thread per element, 64 per workgroup, 2-D.
// Runtime dims: C. Defines: ROWS_K.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // [R, C]
@group(0) @binding(2) var<storage, read> b: array<f32>;          // [R, C]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;    // [R, C]
@group(0) @binding(4) var<uniform> dims: vec4u;                   // C

@compute @workgroup_size(64)
fn silu_mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= rows * dims.x) { return; }
  let v = a[i];
  y[i] = v * sigmoid(v) * b[i];
}
