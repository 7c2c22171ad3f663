// moe_topk: the MoE router's top-K experts per token (spec-deltanet-attention-qwen3next.md §8.6), compact form.
//   p = softmax(logits[r, :]) over E experts (f32); the K largest p in (value descending, index ascending) order;
//   sel[r, j] = expert index of the j-th (as f32), sel[r, K + j] = its weight p (NORM: p / Σ_top-K p);
//   SHARED: logits has one more column, the shared expert's gate logit, and sel[r, 2K] = σ(that logit).
// Bindings: step uniform; logits [R, LW] f32 (LW = E, or E + 1 with SHARED); sel [R, SW] f32 (SW = 2K, or 2K + 1);
// dims (E, K, LW, SW). Defines: NORM, SHARED.
// Dispatch: one workgroup of 64 threads per row (R = step.n), 2-D grid. Each thread owns experts e ≡ lane (mod 64);
// max, sum and each of the K selections are workgroup tree reductions; p is computed once into workgroup memory
// (E ≤ EMAX), so every comparison sees the same values.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [R, E]
@group(0) @binding(2) var<storage, read_write> sel: array<f32>;   // [R, 2K]
@group(0) @binding(3) var<uniform> dims: vec4u;                    // E, K, LW, SW

const WG = 64u;
var<workgroup> rv: array<f32, WG>;
var<workgroup> ri: array<u32, WG>;
var<workgroup> pw: array<f32, EMAX>;

// (v, i) before (w, k) in the selection order: larger value first, lower index on ties
fn before(v: f32, i: u32, w: f32, k: u32) -> bool { return v > w || (v == w && i < k); }

@compute @workgroup_size(WG)
fn moe_topk(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let r = g.x + g.y * ng.x;
  let live = r < step.n;
  let E = dims.x;
  let K = dims.y;
  let lane = l.x;
  let base = r * dims.z;
  let so = r * dims.w;
  var m = -3.0e38;
  if (live) { for (var e = lane; e < E; e += WG) { m = max(m, logits[base + e]); } }
  rv[lane] = m;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { rv[lane] = max(rv[lane], rv[lane + s]); }
    workgroupBarrier();
  }
  m = rv[0];
  workgroupBarrier();
  var sum = 0.0;
  if (live) { for (var e = lane; e < E; e += WG) { sum += exp(logits[base + e] - m); } }
  rv[lane] = sum;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { rv[lane] += rv[lane + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / rv[0];
  if (live) { for (var e = lane; e < E; e += WG) { pw[e] = exp(logits[base + e] - m) * inv; } }
  workgroupBarrier();
  var lv = 2.0;          // the previous selection; above every probability at first
  var li = 0u;
  var tot = 0.0;
  for (var j = 0u; j < K; j++) {
    var bv = -1.0;
    var bi = 0xffffffffu;
    if (live) {
      for (var e = lane; e < E; e += WG) {
        let p = pw[e];
        if (before(lv, li, p, e) && before(p, e, bv, bi)) { bv = p; bi = e; }
      }
    }
    rv[lane] = bv;
    ri[lane] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lane < s && before(rv[lane + s], ri[lane + s], rv[lane], ri[lane])) { rv[lane] = rv[lane + s]; ri[lane] = ri[lane + s]; }
      workgroupBarrier();
    }
    lv = rv[0];
    li = ri[0];
    workgroupBarrier();
    tot += lv;
    if (live && lane == 0u) { sel[so + j] = f32(min(li, E - 1u)); sel[so + K + j] = lv; }   // NaN logits select none: an id < E all the same
  }
  if (NORM && live && lane == 0u) {
    let f = 1.0 / tot;
    for (var j = 0u; j < K; j++) { sel[so + K + j] *= f; }
  }
  if (SHARED && live && lane == 0u) { sel[so + 2u * K] = 1.0 / (1.0 + exp(-logits[base + E])); }
}
