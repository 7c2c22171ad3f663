// wkv7_lora: one RWKV7 time-mix layer core with its LoRA up-projections and gate math in the prologue
// (spec-rwkv7-gla-abc.md §1.3 steps 4–11), token by token. Per token t and channel c, from the activated LoRA
// down-projections l = [tanh(xw·W1ᵀ) | xa·A1ᵀ | σ(xg·G1ᵀ) | xv·V1ᵀ] (lora, R = RW + RA + RG + RV columns):
//   w = −e^{−0.5}·σ(w0 + l_w·W2ᵀ)   a = σ(a0 + l_a·A2ᵀ)   g = l_g·G2ᵀ   m = σ(v0 + l_v·V2ᵀ) (not FIRST)
// then as wkv7_recurrent: v ← lerp(v, v_first, m); κ̂ = norm(k⊙k_k); k̃ = k⊙(1 + (a−1)⊙k_a);
//   u = −κ̂ᵀS;  S ← diag(e^w)·S + (κ̂⊙a)·uᵀ + k̃·vᵀ;  o = rᵀS;  y = (GroupNorm(o) + (Σ r⊙k̃⊙r_k)·v) ⊙ g
// Bindings: step uniform; stepmeta u32 (cursors); proj [6, cap, C] (planes r 0, k 2, v 3 read); lora [N, R];
// W [R, C] packed as 16-byte units (EPU = 8 bf16/f16 or 4 f32 each): the up-projections transposed and stacked
// (W2ᵀ, A2ᵀ, G2ᵀ, V2ᵀ), row i = lora column i; params [8, C] = k_k, k_a, r_k, g_norm.weight, g_norm.bias, w0, a0, v0;
// vfirst [N, C] (written if FIRST); state [slots, H, D, D] f32 (S[i][j], i = key); y [N, C]; with SHIFT, shift
// [slots, C]: the time-mix shift state, stored from the last row of proj plane 4 (the LayerNorm rows rwkv7_proj_ln
// wrote there). Nine storage buffers.
// Dispatch: (H, B) workgroups of WG threads (a power of two, D ≤ WG).
// Prologue, per token: the head's D columns of a row of W are CU = D / EPU units; thread li loads unit li % CU of
// rows li / CU + k·NRG (NRG = WG / CU row groups), all of a batch of KB rows in flight before any FMA, each row's
// product added to the sum of its segment (w, a, g, v: the row range decides, by select). The NRG partial sums of
// each (segment, channel) are added through workgroup memory in two stages (P = WG / D threads per channel, then
// the P partials in order); with SGP (needs SG_RED) first over the lanes of a subgroup that hold the same unit
// (subgroupShuffleXor at strides CU … sg / 2), then the subgroups' sums of all four segments in one workgroup-memory
// pass read by the channel threads (one barrier instead of two a segment). SGP also shares the barrier of the κ sums
// with the channel quantities' (κ̂ formed where read) and gives each workgroup sum its own slots (no trailing barrier):
// four barriers a token (five between tokens) instead of sixteen. Recurrence: thread li owns rows [p·D/P, (p+1)·D/P)
// of column j = li / P of S (p = li % P, SR = D / P registers); u and o are summed over the P threads of a column (subgroupShuffleXor
// when SG_RED, else workgroup memory), the GroupNorm statistics over the workgroup (subgroupAdd + workgroup memory,
// or a workgroup tree). The channel quantities (κ̂, κ̂⊙a, k̃, r, e^w, v, g) are computed by threads li < D for
// channel h·D + li and shared through workgroup memory. Every thread takes part in every barrier.
// Runtime dims: C, GN_EPS, R, LS (lora's row stride), RW, RA, RG (the ranks' sum and the first three).
// This channel's v_first is loaded with its other inputs, before the prologue.
// Defines: D, WG, P, EPU, KB, FIRST, FUSE_NORM, SHIFT, W_F32, W_F16, SG_RED, SGS, SGP.
// All arithmetic f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(3) var<storage, read> lora: array<f32>;        // [N, LS] (row stride LS ≥ R)
@group(0) @binding(4) var<storage, read> W: array<vec4u>;         // [R, C / EPU]
@group(0) @binding(5) var<storage, read> params: array<f32>;      // [8, C]
@group(0) @binding(6) var<storage, read_write> vfirst: array<f32>; // [N, C]
@group(0) @binding(7) var<storage, read_write> state: array<f32>; // [slots, H, D, D]
@group(0) @binding(8) var<storage, read_write> y: array<f32>;     // [N, C]
@group(0) @binding(9) var<storage, read_write> shift: array<f32>; // [slots, C] (SHIFT)
@group(0) @binding(10) var<uniform> dims: array<vec4u, 2>;          // C, GN_EPS (f32 bits), R, LS | RW, RA, RG, 0

const CU = D / EPU;                  // units per row of the head's columns
const NRG = WG / CU;                 // row groups of the prologue
const SR = D / P;                    // rows of S per thread

#if SGP
const NQ = WG / max(SGS, CU);        // subgroups (of at least SGS lanes) or unit-wide lane blocks: at most this many
var<workgroup> part: array<f32, 4 * NQ * D>;  // [4 segments, NQ, D]: each subgroup's sums
#else
var<workgroup> part: array<f32, WG * EPU>;   // [NRG, D]: one segment's partial sums per row group
var<workgroup> part2: array<f32, 4 * WG>;    // [4 segments, P, D]
#endif
var<workgroup> sh_kk: array<f32, D>;
var<workgroup> sh_beta: array<f32, D>;
var<workgroup> sh_kt: array<f32, D>;
var<workgroup> sh_r: array<f32, D>;
var<workgroup> sh_dec: array<f32, D>;
var<workgroup> sh_v: array<f32, D>;
var<workgroup> sh_g: array<f32, D>;
#if !SG_RED
var<workgroup> redp: array<f32, WG>;
#endif
#include "rwkv7_red.wgsl"
#include "wkv7_chan.wgsl"

fn unpack(w: vec4u) -> array<f32, EPU> {
  var e: array<f32, EPU>;
#if W_F32
  let f = bitcast<vec4f>(w);
  for (var k = 0u; k < 4u; k++) { e[k] = f[k]; }
#else
  for (var k = 0u; k < 4u; k++) {
#if W_F16
    let p = unpack2x16float(w[k]);
#else
    let p = vec2f(bitcast<f32>(w[k] << 16u), bitcast<f32>(w[k] & 0xffff0000u));
#endif
    e[2u * k] = p.x;
    e[2u * k + 1u] = p.y;
  }
#endif
  return e;
}

// Sum of v over the P threads of a column (lanes li − li % P … + P − 1).
fn col_sum(v: f32, li: u32) -> f32 {
#if SG_RED
  var s = v;
  for (var m = 1u; m < P; m <<= 1u) { s += subgroupShuffleXor(s, m); }
#else
  redp[li] = v;
  workgroupBarrier();
  var s = 0.0;
  for (var q = 0u; q < P; q++) { s += redp[li - li % P + q]; }
  workgroupBarrier();
#endif
  return s;
}

#if SGP
// Segment s's partial sums (this thread's EPU channels) over the lanes of the subgroup with the same unit, stored for
// the subgroup (block li / max(sg, CU)) by its first CU lanes, which hold them. No barrier: the caller's follows.
fn reduce_sg(s: u32, acc: array<f32, EPU>, li: u32, sg: u32) {
  var a = acc;
  for (var m = CU; m < sg; m <<= 1u) {
    for (var e = 0u; e < EPU; e++) { a[e] += subgroupShuffleXor(a[e], m); }
  }
  let blk = max(sg, CU);
  if (li % blk < CU) {
    for (var e = 0u; e < EPU; e++) { part[(s * NQ + li / blk) * D + (li % CU) * EPU + e] = a[e]; }
  }
}

var<workgroup> wred3: array<vec2f, 3u * (WG / SGS)>;   // the subgroups' sums: κ sums, GroupNorm mean, its variance

// wg_sum2 through region `region` of wred3 (the same sums in the same order) without its trailing barrier: each region
// is written once a token, after the previous token's closing barrier.
fn sg_total(v: vec2f, li: u32, sg: u32, region: u32) -> vec2f {
  let s = subgroupAdd(v);
  if (li % sg == 0u) { wred3[region * (WG / SGS) + li / sg] = s; }
  workgroupBarrier();
  var total = vec2f(0.0);
  for (var i = 0u; i < WG / sg; i++) { total += wred3[region * (WG / SGS) + i]; }
  return total;
}
#else
// Segment s's partial sums (this thread's EPU channels) into part2[s]: two stages through workgroup memory.
fn reduce_seg(s: u32, acc: array<f32, EPU>, li: u32) {
  let cu = li % CU;
  let rg = li / CU;
  for (var e = 0u; e < EPU; e++) { part[rg * D + cu * EPU + e] = acc[e]; }
  workgroupBarrier();
  let ch = li % D;
  let q = li / D;
  var v = 0.0;
  for (var g = q; g < NRG; g += P) { v += part[g * D + ch]; }
  part2[(s * P + q) * D + ch] = v;
  workgroupBarrier();
}
#endif

@compute @workgroup_size(WG)
#if SG_RED
fn wkv7_lora(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(subgroup_size) sg: u32) {
#else
fn wkv7_lora(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u) {
  let sg = 1u;
#endif
  let C = dims[0].x;
  let GN_EPS = bitcast<f32>(dims[0].y);
  let R = dims[0].z;
  let LS = dims[0].w;
  let RW = dims[1].x;
  let RA = dims[1].y;
  let RG = dims[1].z;
  let KR = (R + NRG - 1u) / NRG;     // rows per thread
  let H = C / D;
  let h = g.x;
  let seq = g.y;
  if (seq >= step.b) { return; }   // uniform per workgroup
  // prologue role: unit cu of rows rg + k·NRG
  let cu = li % CU;
  let rg = li / CU;
  let wrow = C / EPU;                // units per row of W
  let wofs = h * CU + cu;
  // channel role (li < D): channel c
  let j = min(li, D - 1u);
  let c = h * D + j;
  // what depends on neither the cursor nor the token first: this channel's parameters and the first batch of weights
  let pkk = params[c];
  let pka = params[C + c];
  let prk = params[2u * C + c];
  let pw0 = params[5u * C + c];
  let pa0 = params[6u * C + c];
  let pv0 = params[7u * C + c];
  var wv0: array<vec4u, KB>;
  for (var q = 0u; q < KB; q++) { wv0[q] = W[min(rg + q * NRG, R - 1u) * wrow + wofs]; }
  // recurrence role: column jc (channel cj), rows [p·SR, p·SR + SR); its GroupNorm weight and bias
  let jc = li / P;
  let p = li % P;
  let cj = h * D + jc;
  let pgw = params[3u * C + cj];
  let pgb = params[4u * C + cj];
  let cur = cursor(seq);
  let base = (cur.slot * H + h) * D * D;
  var S: array<f32, SR>;
  for (var i = 0u; i < SR; i++) { S[i] = state[base + (p * SR + i) * D + jc]; }
  let plane = step.cap * C;
  for (var t = cur.start; t < cur.start + cur.len; t++) {
    let tc = t * C + c;
    // this channel's inputs, loaded with the prologue's
    let r = proj[tc];
    let k = proj[2u * plane + tc];
    var v = proj[3u * plane + tc];
    var vf = 0.0;
    if (!FIRST) { vf = vfirst[tc]; }
    var aw = array<f32, EPU>();
    var aa = array<f32, EPU>();
    var ag = array<f32, EPU>();
    var av = array<f32, EPU>();
    for (var k0 = 0u; k0 < KR; k0 += KB) {
      var wv: array<vec4u, KB>;
      var lv: array<f32, KB>;
      if (k0 == 0u && t == cur.start) {
        wv = wv0;
      } else {
        for (var q = 0u; q < KB; q++) { wv[q] = W[min(rg + (k0 + q) * NRG, R - 1u) * wrow + wofs]; }
      }
      for (var q = 0u; q < KB; q++) {
        let i = rg + (k0 + q) * NRG;
        lv[q] = select(0.0, lora[t * LS + min(i, R - 1u)], i < R);
      }
      for (var q = 0u; q < KB; q++) {
        let i = rg + (k0 + q) * NRG;
        let e = unpack(wv[q]);
        let lw = select(0.0, lv[q], i < RW);
        let la = select(0.0, lv[q], i >= RW && i < RW + RA);
        let lg = select(0.0, lv[q], i >= RW + RA && i < RW + RA + RG);
        let lx = select(0.0, lv[q], i >= RW + RA + RG);
        for (var u = 0u; u < EPU; u++) {
          aw[u] += lw * e[u];
          aa[u] += la * e[u];
          ag[u] += lg * e[u];
          av[u] += lx * e[u];
        }
      }
    }
#if SGP
    reduce_sg(0u, aw, li, sg);
    reduce_sg(1u, aa, li, sg);
    reduce_sg(2u, ag, li, sg);
    if (!FIRST) { reduce_sg(3u, av, li, sg); }
    workgroupBarrier();
    var ps = vec4f(0.0);
    for (var q = 0u; q < WG / max(sg, CU); q++) {
      ps += vec4f(part[q * D + j], part[(NQ + q) * D + j], part[(2u * NQ + q) * D + j], part[(3u * NQ + q) * D + j]);
    }
#else
    reduce_seg(0u, aw, li);
    reduce_seg(1u, aa, li);
    reduce_seg(2u, ag, li);
    if (!FIRST) { reduce_seg(3u, av, li); }
    var ps = vec4f(0.0);
    for (var q = 0u; q < P; q++) {
      ps += vec4f(part2[q * D + j], part2[(P + q) * D + j], part2[(2u * P + q) * D + j], part2[(3u * P + q) * D + j]);
    }
#endif
    // channel quantities (threads li < D; the others compute the same for channel D − 1 and drop it)
    let lw = -0.6065306597126334 * sigmoid(ps.x + pw0);
    let a = sigmoid(ps.y + pa0);
    if (FIRST) {
      if (li < D) { vfirst[tc] = v; }
    } else {
      let m = sigmoid(ps.w + pv0);
      v = lerp_v(v, vf, m);
    }
    let kk = k * pkk;
    let kt = k * (1.0 + (a - 1.0) * pka);
    var contrib = vec2f(0.0);
    if (li < D) { contrib = vec2f(kk * kk, r * kt * prk); }
#if SGP
    // the channel quantities go to workgroup memory before the κ sums, whose barrier they share: κ (not κ̂) and a, κ̂ =
    // κ·inv and κ̂⊙a formed where they are read (the same products)
    if (li < D) {
      sh_kk[j] = kk;
      sh_beta[j] = a;
      sh_kt[j] = kt;
      sh_r[j] = r;
      sh_dec[j] = exp(lw);
      sh_v[j] = v;
      sh_g[j] = ps.z;
    }
    let sums = sg_total(contrib, li, sg, 0u);
    let inv = knorm(sums.x);
    var up = 0.0;
    for (var i = 0u; i < SR; i++) { up -= (sh_kk[p * SR + i] * inv) * S[i]; }
    let u = col_sum(up, li);
    let vj = sh_v[jc];
    var op = 0.0;
    for (var i = 0u; i < SR; i++) {
      let ki = p * SR + i;
      let kn = sh_kk[ki] * inv;
      S[i] = sh_dec[ki] * S[i] + (kn * sh_beta[ki]) * u + sh_kt[ki] * vj;
      op += sh_r[ki] * S[i];
    }
    let o = col_sum(op, li);
    let mu = sg_total(vec2f(select(0.0, o, p == 0u), 0.0), li, sg, 1u).x / f32(D);
    let d = o - mu;
    let var_ = sg_total(vec2f(select(0.0, d * d, p == 0u), 0.0), li, sg, 2u).x / f32(D);
    if (p == 0u) {
      let on = d * inverseSqrt(var_ + GN_EPS) * pgw + pgb;
      y[t * C + cj] = (on + sums.y * vj) * sh_g[jc];
    }
    // this token's reads of workgroup memory end before the next token's writes
    if (t + 1u < cur.start + cur.len) { workgroupBarrier(); }
#else
    let sums = wg_sum2(contrib, li, sg);
    let inv = knorm(sums.x);
    let kn = kk * inv;
    if (li < D) {
      sh_kk[j] = kn;
      sh_beta[j] = kn * a;
      sh_kt[j] = kt;
      sh_r[j] = r;
      sh_dec[j] = exp(lw);
      sh_v[j] = v;
      sh_g[j] = ps.z;
    }
    workgroupBarrier();
    // column jc, rows p·SR … : u = −κ̂ᵀS, then S and o = rᵀS
    var up = 0.0;
    for (var i = 0u; i < SR; i++) { up -= sh_kk[p * SR + i] * S[i]; }
    let u = col_sum(up, li);
    let vj = sh_v[jc];
    var op = 0.0;
    for (var i = 0u; i < SR; i++) {
      let ki = p * SR + i;
      S[i] = sh_dec[ki] * S[i] + sh_beta[ki] * u + sh_kt[ki] * vj;
      op += sh_r[ki] * S[i];
    }
    let o = col_sum(op, li);
    let mu = wg_sum(select(0.0, o, p == 0u), li, sg) / f32(D);
    let d = o - mu;
    let var_ = wg_sum(select(0.0, d * d, p == 0u), li, sg) / f32(D);
    if (p == 0u) {
      let on = d * inverseSqrt(var_ + GN_EPS) * pgw + pgb;
      y[t * C + cj] = (on + sums.y * vj) * sh_g[jc];
    }
    workgroupBarrier();   // this token's reads of the sh_ arrays end before the next token's writes
#endif
  }
  for (var i = 0u; i < SR; i++) { state[base + (p * SR + i) * D + jc] = S[i]; }
  // SHIFT: the time-mix shift state of the slot becomes h (proj plane 4) of the sequence's last token (rwkv7_proj_ln
  // only read it)
  if (SHIFT && li < D && cur.len > 0u) { shift[cur.slot * C + c] = proj[4u * plane + (cur.start + cur.len - 1u) * C + c]; }
}
