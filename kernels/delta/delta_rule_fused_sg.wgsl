// delta_rule_fused_sg: delta_rule_fused.wgsl's recurrence and output norm (same bindings, same dims, same inputs)
// with the state held in registers as column quads and every sum but one reduced inside a subgroup. Per value head
// hv (one workgroup, sequence wg.y) the head's S [DK, DV] is split into NQ = DV / 4 column quads × RL row lanes:
// lane li = wl + W·(r + RL·qh) holds column quad cq = qh·W + wl (columns 4cq … 4cq + 3) of rows i·RL + r, i < DR
// (DR = DK / RL; interleaved, so a warp reads RL consecutive rows of q, k and S at once) as DR vec4 registers, loaded
// once before the tokens and stored once after them. A group of GL = W·RL consecutive lanes (inside one subgroup: GL ≤ the adapter's smallest subgroup size) holds W quads × all
// DK rows, so the sums over the rows of a column (Sᵀk, Sᵀq) and the q/k norms (Σq², Σk² or Σq, Σk over the lane's
// rows) are subgroupShuffleXor butterflies over the row-lane bits (masks W … GL/2; every lane ends with the same
// bits). The output norm's Σ over the head's columns is subgroupAdd, then the subgroups' sums through workgroup
// memory: the one barrier a token (two buffers, alternating by token). A lane reads q, k of its own rows and v, z,
// the norm weight of its own columns straight from the inputs (no staging). Defines: DK, BV (= DV, a multiple of 4),
// RL (row lanes, a power of two dividing DK), DR (= DK / RL; the loops over a lane's rows are unrolled, the state's
// array indexed by constants only: registers), W (quads a group, dividing NQ), SGS (the adapter's smallest subgroup
// size, ≥ W·RL), QK_ACT, QK_NORM, V_SILU, HAS_GATE, HAS_BETA, NEG_EIG, HAS_Z. All f32.
// CONV (one value head a q/k head): the short conv that makes q|k|v runs in the prologue of each token (short_conv_fused's
// sums, taps in order): the workgroup's NC = 2·DK + DV channels (q, k of head hv, v of head hv), a thread a channel,
// from the raw projection cx [N, cxS] (channel ch at column cxO + ch) with the weights cw [C, CW] and the slot's
// history cs [slots, CW − 1, C] (held in workgroup memory over the step's tokens, stored back after them); SiLU on
// every channel with CSILU, else on channels ≥ SPLIT; the outputs meet in workgroup memory (one more barrier a
// token) and q|k|v itself is not written (its tensor is not bound: a, b and z are cx's columns too, 8 storage
// buffers). C = the S of dims[1]; dims[4] = (cxS, cxO, SPLIT).
#include "common.wgsl"
#include "delta_common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
#if CONV
@group(0) @binding(2) var<storage, read> cx: array<f32>;          // [N, cxS]: the conv's inputs, a, b and z
@group(0) @binding(3) var<storage, read> gp: array<f32>;          // [2, HV]
@group(0) @binding(4) var<storage, read> gn: array<f32>;          // [DV]
@group(0) @binding(5) var<storage, read> cw: array<f32>;          // [C, CW]
@group(0) @binding(6) var<storage, read_write> state: array<vec4f>; // [slots, HV, DK, DV / 4]
@group(0) @binding(7) var<storage, read_write> cs: array<f32>;    // [slots, CW − 1, C]
@group(0) @binding(8) var<storage, read_write> o: array<f32>;     // [N, HV·DV]
#else
@group(0) @binding(2) var<storage, read> qkv: array<f32>;         // [N, S]
@group(0) @binding(3) var<storage, read> gab: array<f32>;         // [N, P]
@group(0) @binding(4) var<storage, read> z: array<f32>;           // [N, Z]
@group(0) @binding(5) var<storage, read> gp: array<f32>;          // [2, HV]
@group(0) @binding(6) var<storage, read> gn: array<f32>;          // [DV]
@group(0) @binding(7) var<storage, read_write> state: array<vec4f>; // [slots, HV, DK, DV / 4]
@group(0) @binding(8) var<storage, read_write> o: array<f32>;     // [N, HV·DV]
#endif
@group(0) @binding(9) var<uniform> dims: array<vec4u, 5>;         // (H, HV, DV, eps), (S, qO, kO, vO), (P, aO, bO), (Z, zO), (cxS, cxO, SPLIT)

// a and b (gab), z: the raw projection's columns with CONV
fn gab_at(i: u32) -> f32 {
#if CONV
  return cx[i];
#else
  return gab[i];
#endif
}
fn z_at(i: u32) -> f32 {
#if CONV
  return cx[i];
#else
  return z[i];
#endif
}

const NQ = BV / 4u;
const NT = NQ * RL;
const GL = W * RL;
const NSG = (NT + SGS - 1u) / SGS;        // subgroups of the workgroup, at most

var<workgroup> wred: array<f32, 2u * NSG>;
#if CONV
const NC = 2u * DK + BV;
const HN = CW - 1u;
var<workgroup> sh_x: array<f32, NC>;         // this token's conv outputs: q, k, v of the head
var<workgroup> hist: array<f32, NC * HN>;    // the conv history, oldest first, [HN, NC]

// the conv channel of the head's j-th input (q, k of head h, then v of head hv)
fn conv_ch(j: u32, h: u32, hv: u32) -> u32 {
  let L = dims[1];
  if (j < DK) { return L.y + h * DK + j; }
  if (j < 2u * DK) { return L.z + h * DK + j - DK; }
  return L.w + hv * BV + j - 2u * DK;
}
#else
fn quad(a: u32) -> vec4f { return vec4f(qkv[a], qkv[a + 1u], qkv[a + 2u], qkv[a + 3u]); }
#endif

// Σ of x over the RL row lanes of the lane's group (every row lane gets the same bits)
fn rows4(x: vec4f) -> vec4f {
  var s = x;
  for (var m = W; m < GL; m <<= 1u) { s += subgroupShuffleXor(s, m); }
  return s;
}
fn rows2(x: vec2f) -> vec2f {
  var s = x;
  for (var m = W; m < GL; m <<= 1u) { s += subgroupShuffleXor(s, m); }
  return s;
}

// q or k (activated) of row i·RL + r of the head, from a = the index of row r: in the conv's outputs, or the packed row
fn qk_in(a: u32, i: u32) -> f32 {
#if CONV
  return qk_act(sh_x[a + i * RL]);
#else
  return qk_act(qkv[a + i * RL]);
#endif
}

@compute @workgroup_size(NT)
fn delta_rule_fused_sg(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3u,
  @builtin(subgroup_size) sg: u32) {
  let H = dims[0].x;
  let HV = dims[0].y;
  let eps = bitcast<f32>(dims[0].w);
  let L = dims[1];
  let G = dims[2];
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let hv = wg.x;
  let r = (li / W) % RL;
  let cq = (li / GL) * W + li % W;
  let c0 = 4u * cq;
  let h = hv / (HV / H);
  let cu = cursor(seq);
  let base = ((cu.slot * HV + hv) * DK + r) * NQ + cq;
  var S: array<vec4f, DR>;                     // rows i·RL + r
#unroll i DR
  S[{i}] = state[base + {i}u * RL * NQ];
#endunroll
  let scale = inverseSqrt(f32(DK));
  var A = 0.0;
  var dtb = 0.0;
  if (HAS_GATE) { A = exp(gp[hv]); dtb = gp[HV + hv]; }
  let w4 = vec4f(gn[c0], gn[c0 + 1u], gn[c0 + 2u], gn[c0 + 3u]);
#if CONV
  let CV = dims[4];
  let hbase = cu.slot * HN * L.x;
  for (var j = li; j < NC; j += NT) {
    let ch = conv_ch(j, h, hv);
    for (var i = 0u; i < HN; i++) { hist[i * NC + j] = cs[hbase + i * L.x + ch]; }
  }
#endif
  for (var t = cu.start; t < cu.start + cu.len; t++) {
    // the gates first: their loads need not wait for the conv's barrier
    let grow = t * G.x;
    var dec = 1.0;
    if (HAS_GATE) { dec = exp(-A * softplus(gab_at(grow + G.y + hv) + dtb)); }
    var beta = 1.0;
    if (HAS_BETA) { beta = sigmoid(gab_at(grow + G.z + hv)); }
    if (NEG_EIG) { beta *= 2.0; }
    var zs = vec4f(1.0);
    if (HAS_Z) {
      let za = t * dims[3].x + dims[3].y + hv * BV + c0;
      let zc = vec4f(z_at(za), z_at(za + 1u), z_at(za + 2u), z_at(za + 3u));
      zs = zc * (1.0 / (1.0 + exp(-zc)));
    }
#if CONV
    {
      for (var j = li; j < NC; j += NT) {
        let ch = conv_ch(j, h, hv);
        let xin = cx[t * CV.x + CV.y + ch];
        var s = 0.0;
        for (var i = 0u; i < HN; i++) { s = fma(cw[ch * CW + i], hist[i * NC + j], s); }
        s = fma(cw[ch * CW + HN], xin, s);
        for (var i = 0u; i + 1u < HN; i++) { hist[i * NC + j] = hist[(i + 1u) * NC + j]; }
        hist[(HN - 1u) * NC + j] = xin;
        if (CSILU || ch >= CV.z) { s = s * sigmoid(s); }
        sh_x[j] = s;
      }
      workgroupBarrier();
    }
#endif
    let row = t * L.x;
#if CONV
    let qo = r;                                  // in sh_x
    let ko = DK + r;
#else
    let qo = row + L.y + h * DK + r;
    let ko = row + L.z + h * DK + r;
#endif
    var part = vec2f(0.0);
#unroll i DR
    {
      let qa = qk_in(qo, {i}u);
      let ka = qk_in(ko, {i}u);
      if (QK_NORM == 1u) { part += vec2f(qa * qa, ka * ka); } else { part += vec2f(qa, ka); }
    }
#endunroll
#if CONV
    let vj = 2u * DK + c0;
    var vc = vec4f(sh_x[vj], sh_x[vj + 1u], sh_x[vj + 2u], sh_x[vj + 3u]);
#else
    var vc = quad(row + L.w + hv * BV + c0);
#endif
    if (V_SILU) { vc = vc * (1.0 / (1.0 + exp(-vc))); }
    let tot = rows2(part);
    var inv = vec2f(1.0);
    if (QK_NORM == 1u) { inv = inverseSqrt(tot + vec2f(1e-6)); }
    if (QK_NORM == 2u) { inv = 1.0 / tot; }
    var p = vec4f(0.0);
#unroll i DR
    S[{i}] *= dec;
    p = fma(S[{i}], vec4f(qk_in(ko, {i}u)), p);
#endunroll
    p = rows4(p);
    let u = beta * (vc - p * inv.y) * inv.y;     // k̂ = k·inv.y: S += k·(inv.y·u)
    var acc = vec4f(0.0);
#unroll i DR
    S[{i}] = fma(vec4f(qk_in(ko, {i}u)), u, S[{i}]);
    acc = fma(S[{i}], vec4f(qk_in(qo, {i}u)), acc);
#endunroll
    acc = rows4(acc);
    let y = acc * (inv.x * scale);
    // Σ y² over the head's columns: row lane 0 of each quad counts it
    let ss = subgroupAdd(select(0.0, dot(y, y), r == 0u));
    let buf = ((t - cu.start) % 2u) * NSG;
    if (li % sg == 0u) { wred[buf + li / sg] = ss; }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < (NT + sg - 1u) / sg; i++) { total += wred[buf + i]; }
    let yn = y * inverseSqrt(total / f32(BV) + eps) * w4 * zs;
    if (r == 0u) {
      let oa = t * HV * BV + hv * BV + c0;
      o[oa] = yn.x;
      o[oa + 1u] = yn.y;
      o[oa + 2u] = yn.z;
      o[oa + 3u] = yn.w;
    }
  }
#unroll i DR
  state[base + {i}u * RL * NQ] = S[{i}];
#endunroll
#if CONV
  for (var j = li; j < NC; j += NT) {
    let ch = conv_ch(j, h, hv);
    for (var i = 0u; i < HN; i++) { cs[hbase + i * L.x + ch] = hist[i * NC + j]; }
  }
#endif
}
