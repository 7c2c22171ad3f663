// moe_topk_sg: moe_topk.wgsl's selection (same output, same order: value descending, lower index first on ties) with
// subgroup reductions and one barrier per selection round, for adapters with subgroups (moe_route_sg.wgsl's route(),
// which the fused expert GEMVs also run in their prologue):
//   p = softmax(logits[r, :E]); the K largest p; sel[r, j] = expert, sel[r, K + j] = p (NORM_TOPK: p / Σ_top-K p);
//   SHARED: sel[r, 2K] = σ(logits[r, E]).
// Bindings: step uniform; logits [R, LW] f32; sel [R, SW] f32; dims (E, K, LW, SW). Defines: WG, NORM_TOPK, SHARED,
// EMAX, KMAX (= EMAX: any K ≤ E).
// Dispatch: one workgroup of WG threads per row (R = step.n), 2-D grid. Thread i owns experts i, i + WG, … (EMAX / WG
// of them, in registers) and keeps its best not-yet-selected one; each round the subgroups reduce their best
// (subgroupMax of the value, then subgroupMin of the index among the lanes holding it), the subgroup winners go to
// workgroup memory (two buffers, alternating rounds: one barrier a round), every thread reduces them to the same
// winner, and the winner's owner moves on to its next best.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> logits: array<f32>;      // [R, LW]
@group(0) @binding(2) var<storage, read_write> sel: array<f32>;   // [R, SW]
@group(0) @binding(3) var<uniform> dims: vec4u;                    // E, K, LW, SW

fn rt_logit(i: u32) -> f32 { return logits[i]; }

#include "moe_route_sg.wgsl"

@compute @workgroup_size(WG)
fn moe_topk_sg(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) sl: u32) {
  let r = g.x + g.y * ng.x;
  let live = r < step.n;   // uniform over the workgroup
  let E = dims.x;
  let K = dims.y;
  route(lane, sl, sgs, r * dims.z, E, K, live);
  let so = r * dims.w;
  if (live) {
    for (var k = lane; k < K; k += WG) { sel[so + k] = f32(rt_e[k]); sel[so + K + k] = rt_w[k]; }
    if (SHARED && lane == 0u) { sel[so + 2u * K] = 1.0 / (1.0 + exp(-logits[r * dims.z + E])); }
  }
}
