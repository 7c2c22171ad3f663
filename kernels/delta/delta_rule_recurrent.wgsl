// delta_rule_recurrent: the (gated) delta rule token by token over each packed sequence
// (spec-deltanet-attention-qwen3next.md §1.5, §1.8, §3.3 steps 3–6, §4.3 steps 3–6). Per token, value head hv
// (q/k head ⌊hv / r⌋): q, k ← QK_ACT then QK_NORM; v ← silu if V_SILU; g = −exp(A_log)·softplus(a + dt_bias)
// (HAS_GATE), β = σ(b) (HAS_BETA, else 1) ×2 if NEG_EIG;
//   S ← e^g·S;  u = β·(v − Sᵀk);  S ← S + k·uᵀ;  o = Sᵀq·DK^{−1/2}.
// Bindings: step uniform; stepmeta u32 (cursors); q, k [N, H·DK]; v [N, HV·DV]; a, b [N, HV] (dummy if absent) —
// each possibly a part of a wider packed row (row stride xS, first column xO: dims[1..3]);
// gp [2, HV] f32 = A_log, dt_bias (dummy if !HAS_GATE); state [slots, HV, DK, DV] f32 (K-first); o [N, HV·DV].
// Dispatch: (HV·DV/BV, B) workgroups of BV threads; thread c owns column c of S (DK registers); q/k are staged in
// workgroup memory and their norms reduced there (the 1/norm factors are applied in the dot products).
// Runtime dims: (H, HV, DV), (qS, qO, kS, kO), (vS, vO, aS, aO), (bS, bO). Defines: DK, BV (power of two dividing DV), QK_ACT (0 none, 1 silu, 2 relu, 3 elu+1),
// QK_NORM (0 none, 1 l2, 2 sum), V_SILU, HAS_GATE, HAS_BETA, NEG_EIG. All f32.
#include "common.wgsl"
#include "delta_common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;           // [N, H·DK]
@group(0) @binding(3) var<storage, read> k: array<f32>;           // [N, H·DK]
@group(0) @binding(4) var<storage, read> v: array<f32>;           // [N, HV·DV]
@group(0) @binding(5) var<storage, read> ga: array<f32>;          // [N, HV]
@group(0) @binding(6) var<storage, read> gb: array<f32>;          // [N, HV]
@group(0) @binding(7) var<storage, read> gp: array<f32>;          // [2, HV]
@group(0) @binding(8) var<storage, read_write> state: array<f32>; // [slots, HV, DK, DV]
@group(0) @binding(9) var<storage, read_write> o: array<f32>;     // [N, HV·DV]
@group(0) @binding(10) var<uniform> dims: array<vec4u, 4>;        // (H, HV, DV), (qS, qO, kS, kO), (vS, vO, aS, aO), (bS, bO)

var<workgroup> sh_q: array<f32, DK>;
var<workgroup> sh_k: array<f32, DK>;
var<workgroup> red: array<vec2f, BV>;

@compute @workgroup_size(BV)
fn delta_rule_recurrent(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let H = dims[0].x;
  let HV = dims[0].y;
  let DV = dims[0].z;
  let L1 = dims[1];
  let L2 = dims[2];
  let L3 = dims[3];
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let nb = DV / BV;
  let hv = wg.x / nb;
  let c = (wg.x % nb) * BV + l.x;
  let h = hv / (HV / H);
  let cu = cursor(seq);
  let slot = cu.slot;
  let start = cu.start;
  let len = cu.len;
  let base = (slot * HV + hv) * DK * DV + c;
  var S: array<f32, DK>;
  for (var i = 0u; i < DK; i++) { S[i] = state[base + i * DV]; }
  let scale = inverseSqrt(f32(DK));
  var A = 0.0;
  var dtb = 0.0;
  if (HAS_GATE) { A = exp(gp[hv]); dtb = gp[HV + hv]; }
  for (var t = start; t < start + len; t++) {
    let qo = t * L1.x + L1.y + h * DK;
    let ko = t * L1.z + L1.w + h * DK;
    var part = vec2f(0.0);
    for (var i = l.x; i < DK; i += BV) {
      let qa = qk_act(q[qo + i]);
      let ka = qk_act(k[ko + i]);
      sh_q[i] = qa;
      sh_k[i] = ka;
      if (QK_NORM == 1u) { part += vec2f(qa * qa, ka * ka); } else { part += vec2f(qa, ka); }
    }
    red[l.x] = part;
    workgroupBarrier();
    for (var s = BV / 2u; s > 0u; s >>= 1u) {
      if (l.x < s) { red[l.x] += red[l.x + s]; }
      workgroupBarrier();
    }
    var inv = vec2f(1.0);
    if (QK_NORM == 1u) { inv = inverseSqrt(red[0] + vec2f(1e-6)); }
    if (QK_NORM == 2u) { inv = 1.0 / red[0]; }
    var dec = 1.0;
    if (HAS_GATE) { dec = exp(-A * softplus(ga[t * L2.z + L2.w + hv] + dtb)); }
    var beta = 1.0;
    if (HAS_BETA) { beta = sigmoid(gb[t * L3.x + L3.y + hv]); }
    if (NEG_EIG) { beta *= 2.0; }
    var vc = v[t * L2.x + L2.y + hv * DV + c];
    if (V_SILU) { vc = vc * sigmoid(vc); }
    var p = 0.0;
    for (var i = 0u; i < DK; i++) {
      S[i] *= dec;
      p = fma(S[i], sh_k[i], p);
    }
    let u = beta * (vc - p * inv.y) * inv.y;     // k̂ = k·inv.y: S += k·(inv.y·u)
    var acc = 0.0;
    for (var i = 0u; i < DK; i++) {
      S[i] = fma(sh_k[i], u, S[i]);
      acc = fma(S[i], sh_q[i], acc);
    }
    o[t * HV * DV + hv * DV + c] = acc * inv.x * scale;
    workgroupBarrier();
  }
  for (var i = 0u; i < DK; i++) { state[base + i * DV] = S[i]; }
}
