// feature_map: fla linear attention's φ per head vector (spec-deltanet-attention-qwen3next.md §5.3 steps 3–4):
//   FM 0 identity, 1 relu, 2 elu(x)+1, 3 Hadamard (x·W₀ᵀ+b₀)⊙(x·W₁ᵀ+b₁), 4 t2r relu(x·W₀ᵀ+b₀); NORM: y ← y/(Σy + 1e−4).
// Bindings: step uniform; x [R, HEADS·DK]; W [n, DK, DK] f32 (out, in; dummy without layers); b [n, DK] f32 (dummy
// without HAS_BIAS); y [R, HEADS·DK]. R = step.n (or step.k with ROWS_K).
// Dispatch: one workgroup of WG threads per (row, head), 2-D grid; thread f computes features f, f+WG, …
// Runtime dims: HEADS. Defines: DK, WG, FM, HAS_BIAS, NORM, ROWS_K. f32, serial dot products, tree-reduced sum.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> dims: vec4u;                   // HEADS

var<workgroup> sh_x: array<f32, DK>;
var<workgroup> red: array<f32, WG>;

fn lin(layer: u32, f: u32) -> f32 {
  var s = 0.0;
  let wo = (layer * DK + f) * DK;
  for (var i = 0u; i < DK; i++) { s += sh_x[i] * W[wo + i]; }
  if (HAS_BIAS) { s += b[layer * DK + f]; }
  return s;
}

@compute @workgroup_size(WG)
fn feature_map(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let HEADS = dims.x;
  let id = wg.x + wg.y * ng.x;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  if (id >= rows * HEADS) { return; }
  let xo = id * DK;
  for (var i = l.x; i < DK; i += WG) { sh_x[i] = x[xo + i]; }
  workgroupBarrier();
  var sum = 0.0;
  for (var f = l.x; f < DK; f += WG) {
    let xv = sh_x[f];
    var v = xv;
    if (FM == 1u) { v = max(xv, 0.0); }
    if (FM == 2u) { if (xv > 0.0) { v = xv + 1.0; } else { v = exp(xv); } }
    if (FM == 3u) { v = lin(0u, f) * lin(1u, f); }
    if (FM == 4u) { v = max(lin(0u, f), 0.0); }
    y[xo + f] = v;
    sum += v;
  }
  if (NORM) {
    red[l.x] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (l.x < s) { red[l.x] += red[l.x + s]; }
      workgroupBarrier();
    }
    let inv = 1.0 / (red[0] + 1e-4);
    for (var f = l.x; f < DK; f += WG) { y[xo + f] = y[xo + f] * inv; }
  }
}
