// layer_norm: y[r] = (x[r] − mean)/sqrt(var + EPS)·w (+ b), biased variance, two passes (spec-rwkv7-gla-abc.md §0.1).
// Bindings: step uniform; x [R, C] f32; w [C] f32; b [C] f32 (dummy when !HAS_BIAS); y [R, C] f32 (not aliasing x).
// Dispatch: one workgroup of WG threads per row; R = step.k if ROWS_K else step.n.
// Runtime dims: C, EPS. Defines: WG, HAS_BIAS, ROWS_K. Accumulates in f32 with a workgroup tree reduction.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // [R, C]
@group(0) @binding(2) var<storage, read> w: array<f32>;         // [C]
@group(0) @binding(3) var<storage, read> b: array<f32>;         // [C]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;   // [R, C]
@group(0) @binding(5) var<uniform> dims: vec4f;                 // C, EPS

var<workgroup> red: array<f32, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn layer_norm(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = u32(dims.x);
  let EPS = dims.y;
  let row = g.x + g.y * ng.x;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  if (row >= rows) { return; }   // uniform per workgroup
  let o = row * C;
  var s = 0.0;
  for (var c = l.x; c < C; c += WG) { s += x[o + c]; }
  let mu = wg_sum(s, l.x) / f32(C);
  var v = 0.0;
  for (var c = l.x; c < C; c += WG) { let d = x[o + c] - mu; v += d * d; }
  let inv = inverseSqrt(wg_sum(v, l.x) / f32(C) + EPS);
  for (var c = l.x; c < C; c += WG) {
    var r = (x[o + c] - mu) * inv * w[c];
    if (HAS_BIAS) { r += b[c]; }
    y[o + c] = r;
  }
}
