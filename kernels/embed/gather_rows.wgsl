// gather_rows: y[j, c] = x[keep[j], c], the rows whose logits are kept.
// Bindings: step uniform; stepmeta u32 (keep at step.keep_off); x [N, C] f32; y [K, C] f32.
// Dispatch: one thread per output element, 64 per workgroup, 2-D. Runtime dims: C.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;        // [N, C]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // [K, C]
@group(0) @binding(4) var<uniform> dims: vec4u;                 // C

@compute @workgroup_size(64)
fn gather_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.k * C) { return; }
  let j = i / C;
  let c = i % C;
  y[i] = x[kept_row(j) * C + c];
}
