// mul: y[r, c] (+)= a[r, c] · s[r, j] over [R, C]; j = c (elementwise) or, with BROADCAST, the fixed column `col`
// of s [R, S] (a per-row scale). Used for the sigmoid output gate of gated attention and the per-token MoE weights.
// Bindings: step uniform; a [R, C]; s [R, C] or [R, S]; y [R, C] f32 (never the same buffer as a or s).
// Dispatch: one thread per element, 64 per workgroup, 2-D. Runtime dims: C, S, col. Defines: BROADCAST, ACCUM, ROWS_K.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> a: array<f32>;          // [R, C]
@group(0) @binding(2) var<storage, read> s: array<f32>;          // [R, C] or [R, S]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;    // [R, C]
@group(0) @binding(4) var<uniform> dims: vec4u;                   // C, S, col

@compute @workgroup_size(64)
fn mul(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= rows * dims.x) { return; }
  var sv: f32;
  if (BROADCAST) { sv = s[(i / dims.x) * dims.y + dims.z]; } else { sv = s[i]; }
  let v = a[i] * sv;
  if (ACCUM) { y[i] = y[i] + v; } else { y[i] = v; }
}
