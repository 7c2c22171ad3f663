// delta_rule_fused: delta_rule_recurrent's (gated) delta rule with the output norm of the mixer in its epilogue
// (spec-deltanet-attention-qwen3next.md §1.2 variants C/D, §1.5, §1.8, §3.3 steps 3–7, §4.3 steps 3–7), reading its
// inputs from the packed projections of the layer. Per token, value head hv (q/k head ⌊hv / r⌋): the recurrence of
// delta_rule_recurrent.wgsl, o = Sᵀq̂·DK^{−1/2}, then
//   y = o / sqrt(mean_c(o²) + eps) · w_norm (· silu(z) if HAS_Z)       (over the head's DV columns)
// Bindings: step uniform; stepmeta u32 (cursors); qkv f32: q, k, v of token t at qkv[t·S + qO …], [t·S + kO …],
// [t·S + vO …] (one packed row, e.g. the short conv's output over q|k|v); gab f32: a, b of token t at
// gab[t·P + aO …], [t·P + bO …] (a projection row; dummy when neither is present); z f32: the gate of token t at
// z[t·Z + zO …] (dummy if !HAS_Z; may be gab's tensor again); gp [2, HV] f32 =
// A_log, dt_bias (dummy if !HAS_GATE); gn [DV] f32 (the norm weight, shared by the heads); state [slots, HV, DK, DV]
// f32 (K-first); o [N, HV·DV] (normed).
// Dispatch: (HV, B) workgroups of NT = BV·RL threads (BV = DV): thread (c, r) = (li mod BV, li / BV) owns rows
// [r·DR, (r+1)·DR) of column c of the head's S (DR = DK / RL registers); its partial sums over those rows meet in
// workgroup memory (RL = 1: one thread a column, as before). The norm's sum over the head is one workgroup reduction;
// q/k are staged in workgroup memory and their norms reduced there. Runtime dims: (H, HV, DV, eps bits), (S, qO, kO,
// vO), (P, aO, bO), (Z, zO). Defines: DK, BV (= DV), RL (row lanes, divides DK), RP (power of two ≥ BV·RL), QK_ACT,
// QK_NORM, V_SILU, HAS_GATE, HAS_BETA, NEG_EIG, HAS_Z. All f32; tree reductions.
#include "common.wgsl"
#include "delta_common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;         // [N, S]
@group(0) @binding(3) var<storage, read> gab: array<f32>;         // [N, P]
@group(0) @binding(4) var<storage, read> z: array<f32>;           // [N, Z]
@group(0) @binding(5) var<storage, read> gp: array<f32>;          // [2, HV]
@group(0) @binding(6) var<storage, read> gn: array<f32>;          // [DV]
@group(0) @binding(7) var<storage, read_write> state: array<f32>; // [slots, HV, DK, DV]
@group(0) @binding(8) var<storage, read_write> o: array<f32>;     // [N, HV·DV]
@group(0) @binding(9) var<uniform> dims: array<vec4u, 4>;         // (H, HV, DV, eps), (S, qO, kO, vO), (P, aO, bO), (Z, zO)

const NT = BV * RL;
const DR = DK / RL;

var<workgroup> sh_q: array<f32, DK>;
var<workgroup> sh_k: array<f32, DK>;
var<workgroup> red: array<vec2f, NT>;
var<workgroup> rows: array<f32, NT>;   // the row lanes' partial sums, [RL, BV]

// red[0] ← Σ red[0..NT) (NT need not be a power of two); every thread reads red[0] after it
fn reduce(li: u32) {
  workgroupBarrier();
  for (var s = RP / 2u; s > 0u; s >>= 1u) {
    if (li < s && li + s < NT) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
}

// Σ over the row lanes of column c of each thread's x (every row lane of the column gets the sum)
fn acrossRows(li: u32, c: u32, x: f32) -> f32 {
  if (RL == 1u) { return x; }
  rows[li] = x;
  workgroupBarrier();
  var t = 0.0;
  for (var r = 0u; r < RL; r++) { t += rows[r * BV + c]; }
  workgroupBarrier();                          // every lane has read rows before they are written again
  return t;
}

@compute @workgroup_size(NT)
fn delta_rule_fused(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let H = dims[0].x;
  let HV = dims[0].y;
  let eps = bitcast<f32>(dims[0].w);
  let L = dims[1];
  let G = dims[2];
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let hv = wg.x;
  let li = l.x;
  let c = li % BV;
  let r0 = (li / BV) * DR;
  let h = hv / (HV / H);
  let cu = cursor(seq);
  let base = ((cu.slot * HV + hv) * DK + r0) * BV + c;
  var S: array<f32, DR>;
  for (var i = 0u; i < DR; i++) { S[i] = state[base + i * BV]; }
  let scale = inverseSqrt(f32(DK));
  var A = 0.0;
  var dtb = 0.0;
  if (HAS_GATE) { A = exp(gp[hv]); dtb = gp[HV + hv]; }
  for (var t = cu.start; t < cu.start + cu.len; t++) {
    let row = t * L.x;
    let qo = row + L.y + h * DK;
    let ko = row + L.z + h * DK;
    var part = vec2f(0.0);
    for (var i = li; i < DK; i += NT) {
      let qa = qk_act(qkv[qo + i]);
      let ka = qk_act(qkv[ko + i]);
      sh_q[i] = qa;
      sh_k[i] = ka;
      if (QK_NORM == 1u) { part += vec2f(qa * qa, ka * ka); } else { part += vec2f(qa, ka); }
    }
    red[li] = part;
    reduce(li);
    var inv = vec2f(1.0);
    if (QK_NORM == 1u) { inv = inverseSqrt(red[0] + vec2f(1e-6)); }
    if (QK_NORM == 2u) { inv = 1.0 / red[0]; }
    let grow = t * G.x;
    var dec = 1.0;
    if (HAS_GATE) { dec = exp(-A * softplus(gab[grow + G.y + hv] + dtb)); }
    var beta = 1.0;
    if (HAS_BETA) { beta = sigmoid(gab[grow + G.z + hv]); }
    if (NEG_EIG) { beta *= 2.0; }
    var vc = qkv[row + L.w + hv * BV + c];
    if (V_SILU) { vc = vc * sigmoid(vc); }
    var p = 0.0;
    for (var i = 0u; i < DR; i++) {
      S[i] *= dec;
      p = fma(S[i], sh_k[r0 + i], p);
    }
    p = acrossRows(li, c, p);
    let u = beta * (vc - p * inv.y) * inv.y;     // k̂ = k·inv.y: S += k·(inv.y·u)
    var acc = 0.0;
    for (var i = 0u; i < DR; i++) {
      S[i] = fma(sh_k[r0 + i], u, S[i]);
      acc = fma(S[i], sh_q[r0 + i], acc);
    }
    acc = acrossRows(li, c, acc);
    let y = acc * inv.x * scale;
    workgroupBarrier();                          // every thread has read red[0]
    red[li] = select(vec2f(0.0), vec2f(y * y, 0.0), li < BV);
    reduce(li);
    var yn = y * inverseSqrt(red[0].x / f32(BV) + eps) * gn[c];
    if (HAS_Z) { let zc = z[t * dims[3].x + dims[3].y + hv * BV + c]; yn *= zc * sigmoid(zc); }
    if (li < BV) { o[t * HV * BV + hv * BV + c] = yn; }
    workgroupBarrier();                          // sh_q, sh_k and red[0] are read before the next token writes them
  }
  for (var i = 0u; i < DR; i++) { state[base + i * BV] = S[i]; }
}
