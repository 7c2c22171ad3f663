// delta_chunk_prep: first pass of the chunked delta rule (spec-deltanet-attention-qwen3next.md §10 step 1 inputs):
// per token and q/k head, q̂ = norm(QK_ACT(q)), k̂ = norm(QK_ACT(k)) (QK_NORM as in delta_rule_recurrent), and per
// value head hv = h·r + i of that q/k head: g = −exp(A_log)·softplus(a + dt_bias) (0 without HAS_GATE) and β.
// Bindings: step uniform; q, k [N, H·DK]; a, b [N, HV] (dummy if absent) — each possibly a part of a wider packed
// row (as in delta_rule_recurrent: dims[1..3]); gp [2, HV] = A_log, dt_bias;
// qk [2, cap, H·DK] (planes q̂, k̂); gates [3, cap, HV] (planes g, β, G — G is written by delta_chunk_kkt).
// Dispatch: one workgroup of WG threads per (token, q/k head), 2-D grid. Runtime dims: (H, HV, DV), (qS, qO, kS, kO),
// (vS, vO, aS, aO), (bS, bO).
// Defines: DK, WG, QK_ACT, QK_NORM, HAS_GATE, HAS_BETA, NEG_EIG. f32 tree reduction.
#include "common.wgsl"
#include "delta_common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> q: array<f32>;            // [N, H·DK]
@group(0) @binding(2) var<storage, read> k: array<f32>;            // [N, H·DK]
@group(0) @binding(3) var<storage, read> ga: array<f32>;           // [N, HV]
@group(0) @binding(4) var<storage, read> gb: array<f32>;           // [N, HV]
@group(0) @binding(5) var<storage, read> gp: array<f32>;           // [2, HV]
@group(0) @binding(6) var<storage, read_write> qk: array<f32>;     // [2, cap, H·DK]
@group(0) @binding(7) var<storage, read_write> gates: array<f32>;  // [3, cap, HV]
@group(0) @binding(8) var<uniform> dims: array<vec4u, 4>;          // (H, HV, DV), (qS, qO, kS, kO), (vS, vO, aS, aO), (bS, bO)

var<workgroup> red: array<vec2f, WG>;

@compute @workgroup_size(WG)
fn delta_chunk_prep(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims[0].x;
  let HV = dims[0].y;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * H) { return; }
  let t = idx / H;
  let h = idx % H;
  let o = t * H * DK + h * DK;
  let qo = t * dims[1].x + dims[1].y + h * DK;
  let ko = t * dims[1].z + dims[1].w + h * DK;
  var part = vec2f(0.0);
  for (var i = l.x; i < DK; i += WG) {
    let qa = qk_act(q[qo + i]);
    let ka = qk_act(k[ko + i]);
    if (QK_NORM == 1u) { part += vec2f(qa * qa, ka * ka); } else { part += vec2f(qa, ka); }
  }
  red[l.x] = part;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (l.x < s) { red[l.x] += red[l.x + s]; }
    workgroupBarrier();
  }
  var inv = vec2f(1.0);
  if (QK_NORM == 1u) { inv = inverseSqrt(red[0] + vec2f(1e-6)); }
  if (QK_NORM == 2u) { inv = 1.0 / red[0]; }
  let plane = step.cap * H * DK;
  for (var i = l.x; i < DK; i += WG) {
    qk[o + i] = qk_act(q[qo + i]) * inv.x;
    qk[plane + o + i] = qk_act(k[ko + i]) * inv.y;
  }
  let r = HV / H;
  for (var j = l.x; j < r; j += WG) {
    let hv = h * r + j;
    var g = 0.0;
    if (HAS_GATE) { g = -exp(gp[hv]) * softplus(ga[t * dims[2].z + dims[2].w + hv] + gp[HV + hv]); }
    var beta = 1.0;
    if (HAS_BETA) { beta = sigmoid(gb[t * dims[3].x + dims[3].y + hv]); }
    if (NEG_EIG) { beta *= 2.0; }
    gates[t * HV + hv] = g;
    gates[step.cap * HV + t * HV + hv] = beta;
  }
}
