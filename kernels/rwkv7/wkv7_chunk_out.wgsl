// wkv7_chunk_out: the epilogue of the chunked RWKV7 prefill (wkv7_chunk.ts; spec-rwkv7-gla-abc.md §1.3 steps 9–11),
// as in wkv7_recurrent: per token and head, y = (GroupNorm(o) + bonus·v) ⊙ g, with o from wkv7_chunk_state.
// Bindings: step uniform; proj [6, cap, C] (plane 5 = g read); params [5, C] (g_norm.weight, .bias at 3, 4);
// pre [6, cap, C] (v at plane 4, o at plane 5); bon [cap, H]; y [N, C].
// Dispatch: one workgroup of D threads per (token, head), 2-D grid. Runtime dims: C, GN_EPS. Defines: D.
// f32 tree reductions (the order of wkv7_recurrent's).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(2) var<storage, read> params: array<f32>;      // [5, C]
@group(0) @binding(3) var<storage, read> pre: array<f32>;         // [6, cap, C]
@group(0) @binding(4) var<storage, read> bon: array<f32>;         // [cap, H]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;     // [N, C]
@group(0) @binding(6) var<uniform> dims: vec4f;                   // C, GN_EPS

#include "rwkv7_red.wgsl"



@compute @workgroup_size(D)
fn wkv7_chunk_out(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = u32(dims.x);
  let GN_EPS = dims.y;
  let H = C / D;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * H) { return; }
  let t = idx / H;
  let h = idx % H;
  let j = l.x;
  let c = h * D + j;
  let tc = t * C + c;
  let P = step.cap * C;
  let o = pre[5u * P + tc];
  let mu = wg_sum(o, j, 1u) / f32(D);
  let var_ = wg_sum((o - mu) * (o - mu), j, 1u) / f32(D);
  let on = (o - mu) * inverseSqrt(var_ + GN_EPS) * params[3u * C + c] + params[4u * C + c];
  y[tc] = (on + bon[t * H + h] * pre[4u * P + tc]) * proj[5u * P + tc];
}
