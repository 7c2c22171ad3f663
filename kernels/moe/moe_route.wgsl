// moe_route: MoE router weights (spec-deltanet-attention-qwen3next.md §8.6). Per row r:
//   p = softmax(logits[r, :]) over E experts (f32); the top-K of p ordered by (value descending, index ascending);
//   w[r, e] = p[e] (NORM: p[e] / Σ_top-K p) for the K selected experts, 0 for the others.
// Bindings: step uniform; logits [R, E] f32; w [R, E] f32 (also holds p while the row is processed);
// dims (E, K). Dispatch: one thread per row (R = step.n), 64 per workgroup, 2-D grid. Defines: NORM.
// The K-th element is found without per-row scratch: K passes, each taking the largest element strictly after
// the previous one in that order; the selected set is everything up to and including it.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [R, E]
@group(0) @binding(2) var<storage, read_write> w: array<f32>;     // [R, E]
@group(0) @binding(3) var<uniform> dims: vec4u;                    // E, K

@compute @workgroup_size(64)
fn moe_route(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let r = gid.x + gid.y * ng.x * 64u;
  if (r >= step.n) { return; }
  let E = dims.x;
  let K = dims.y;
  let base = r * E;
  var m = logits[base];
  for (var e = 1u; e < E; e++) { m = max(m, logits[base + e]); }
  var sum = 0.0;
  for (var e = 0u; e < E; e++) { let p = exp(logits[base + e] - m); w[base + e] = p; sum += p; }
  let inv = 1.0 / sum;
  for (var e = 0u; e < E; e++) { w[base + e] = w[base + e] * inv; }
  var lv = 2.0;          // above every probability: the first pass considers all experts
  var li = 0u;
  for (var j = 0u; j < K; j++) {
    var bv = -1.0;
    var bi = E;
    for (var e = 0u; e < E; e++) {
      let p = w[base + e];
      let after = p < lv || (p == lv && e > li);
      if (after && p > bv) { bv = p; bi = e; }
    }
    lv = bv;
    li = bi;
  }
  var tot = 0.0;
  for (var e = 0u; e < E; e++) {
    let p = w[base + e];
    if (p > lv || (p == lv && e <= li)) { tot += p; }
  }
  var f = 1.0;
  if (NORM) { f = 1.0 / tot; }
  for (var e = 0u; e < E; e++) {
    let p = w[base + e];
    var y = 0.0;
    if (p > lv || (p == lv && e <= li)) { y = p * f; }
    w[base + e] = y;
  }
}
