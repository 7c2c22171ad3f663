// moe_topk_sg: moe_topk.wgsl's selection (same output, same order: value descending, lower index first on ties) with
// subgroup reductions and one barrier per selection round, for adapters with subgroups.
//   p = softmax(logits[r, :E]); the K largest p; sel[r, j] = expert, sel[r, K + j] = p (NORM: p / Σ_top-K p);
//   SHARED: sel[r, 2K] = σ(logits[r, E]).
// Bindings: step uniform; logits [R, LW] f32; sel [R, SW] f32; dims (E, K, LW, SW). Defines: WG, NORM, SHARED, EMAX.
// Dispatch: one workgroup of WG threads per row (R = step.n), 2-D grid. Thread i owns experts i, i + WG, … (at most
// EMAX / WG, in registers) and keeps its best not-yet-selected one; each round the subgroups reduce their best
// (subgroupMax of the value, then subgroupMin of the index among the lanes that hold it), the subgroup winners go to
// workgroup memory (two buffers, alternating rounds: one barrier a round), every thread reduces them to the same
// winner, and the winner's owner moves on to its next best. Max and sum of the softmax reduce the same way.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [R, LW]
@group(0) @binding(2) var<storage, read_write> sel: array<f32>;   // [R, SW]
@group(0) @binding(3) var<uniform> dims: vec4u;                    // E, K, LW, SW

const PER = EMAX / WG;
var<workgroup> rv: array<array<f32, WG>, 2>;
var<workgroup> ri: array<array<u32, WG>, 2>;

// (v, i) before (w, k) in the selection order: larger value first, lower index on ties
fn before(v: f32, i: u32, w: f32, k: u32) -> bool { return v > w || (v == w && i < k); }

@compute @workgroup_size(WG)
fn moe_topk_sg(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) sl: u32) {
  let r = g.x + g.y * ng.x;
  let live = r < step.n;   // uniform over the workgroup
  let E = dims.x;
  let K = dims.y;
  let base = r * dims.z;
  let so = r * dims.w;
  let nsg = WG / sgs;
  let si = lane / sgs;
  var p: array<f32, PER>;
  var m = -3.0e38;
  for (var j = 0u; j < PER; j++) {
    let e = lane + j * WG;
    p[j] = -3.0e38;
    if (live && e < E) { p[j] = logits[base + e]; }
    m = max(m, p[j]);
  }
  m = subgroupMax(m);
  if (sl == 0u) { rv[0][si] = m; }
  workgroupBarrier();
  m = rv[0][0];
  for (var s = 1u; s < nsg; s++) { m = max(m, rv[0][s]); }
  var sum = 0.0;
  for (var j = 0u; j < PER; j++) {
    if (lane + j * WG < E) { p[j] = exp(p[j] - m); sum += p[j]; }
  }
  sum = subgroupAdd(sum);
  if (sl == 0u) { rv[1][si] = sum; }
  workgroupBarrier();
  sum = 0.0;
  for (var s = 0u; s < nsg; s++) { sum += rv[1][s]; }
  let inv = 1.0 / sum;
  var taken = 0u;   // bit j: expert lane + j·WG already selected
  var bv = -1.0;
  var bi = 0xffffffffu;
  for (var j = 0u; j < PER; j++) {
    let e = lane + j * WG;
    if (e < E) { p[j] = p[j] * inv; if (before(p[j], e, bv, bi)) { bv = p[j]; bi = e; } }
  }
  var tot = 0.0;
  for (var k = 0u; k < K; k++) {
    let b = k % 2u;
    let mv = subgroupMax(bv);
    let mi = subgroupMin(select(0xffffffffu, bi, bv == mv));
    if (sl == 0u) { rv[b][si] = mv; ri[b][si] = mi; }
    workgroupBarrier();
    var wv = rv[b][0];
    var wi = ri[b][0];
    for (var s = 1u; s < nsg; s++) { if (before(rv[b][s], ri[b][s], wv, wi)) { wv = rv[b][s]; wi = ri[b][s]; } }
    tot += wv;
    if (live && lane == 0u) { sel[so + k] = f32(wi); sel[so + K + k] = wv; }
    if (wi % WG == lane && wi != 0xffffffffu) {
      // the winner was this thread's best: its next best among the rest
      taken |= 1u << (wi / WG);
      bv = -1.0;
      bi = 0xffffffffu;
      for (var j = 0u; j < PER; j++) {
        let e = lane + j * WG;
        if (e < E && (taken & (1u << j)) == 0u && before(p[j], e, bv, bi)) { bv = p[j]; bi = e; }
      }
    }
  }
  if (NORM && live && lane == 0u) {
    let f = 1.0 / tot;
    for (var k = 0u; k < K; k++) { sel[so + K + k] *= f; }
  }
  if (SHARED && live && lane == 0u) { sel[so + 2u * K] = 1.0 / (1.0 + exp(-logits[base + E])); }
}
