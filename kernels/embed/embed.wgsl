// embed: x[t, c] = table[ids[t], c] (spec-rwkv7-gla-abc.md §0.2), weights as f32/bf16/f16 pairs.
// Bindings: step uniform; stepmeta u32 (ids at step.ids_off); W [V, C] packed (WDT); x [N, C] f32.
// Dispatch: one thread per element pair, 64 per workgroup, x = pairs % 65535-ish split in 2-D.
// Runtime dims: C (even). Defines: WDT/W_F32/W_F16.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> W: array<u32>;        // [V, C] packed
@group(0) @binding(3) var<storage, read_write> x: array<f32>;  // [N, C]
@group(0) @binding(4) var<uniform> dims: vec4u;                 // C

@compute @workgroup_size(64)
fn embed(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let i = gid.x + gid.y * ng.x * 64u;     // pair index over [N, C/2]
  if (i >= step.n * (C / 2u)) { return; }
  let t = i / (C / 2u);
  let p = i % (C / 2u);
  let id = token_id(t);
  let v = wpair(id * (C / 2u) + p);
  x[t * C + 2u * p] = v.x;
  x[t * C + 2u * p + 1u] = v.y;
}
