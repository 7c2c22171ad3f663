// sdpa_sgmat: sdpa_flash's tiled causal GQA attention with its two products on subgroup matrices (tensor cores),
// f32-grade: each operand x is split into two f16 values, x = hi + lo (hi: x rounded to 11 significant bits, lo =
// f16(x − hi)), and each product is the three f16 products hi·hi + hi·lo + lo·hi accumulated in f32 (the lo·lo term,
// ~2⁻²² relative, is dropped). Operands must lie in f16's range (|x| < 65504; q, k, v of the models here do); lo
// loses bits below f16's normal range (|x| < 2⁻²), an absolute error ≤ 2⁻²⁵ — P (in [0, 1]) is therefore split as
// P·2¹³ and the P·V result scaled back by 2⁻¹³ (exact), so its error stays relative down to P ≈ 2⁻¹³.
// One workgroup of NS subgroups (SG = 32 lanes) takes BR = 16·NS query rows of one sequence and one KV head (row r:
// token r / G, query head kh·G + r % G) and walks the causal key range in tiles of BC keys. Subgroup s owns rows
// 16s … 16s + 15: its Q fragments (D/16 of hi and of lo) stay in registers the whole loop; per tile
//   S = Q·Kᵀ (BC/16 result matrices) → its staging block (f32) → softmax by its lanes (lane: row lane / 2, keys or
//   output dims of half hf = lane % 2; running max m, partial sums l, the row's O share in registers) → P split into hi/lo
//   f16 → O += P·V (D/16 result matrices) through the staging block again, each lane rescaling its O share first.
// K, then V, tiles (and Q at the start) pass through th / tl (f16 hi / lo, 8 a vec4<u32> slot, rows padded by one
// slot). Four barriers a tile. The lines `//@ NAME` are filled by sdpa_sgmat.ts with straight-line code (every
// matrix a named value). Matrix offsets are subgroup-uniform (from @builtin(subgroup_id)).
// Bindings, dims, dispatch and grid: as sdpa_flash.wgsl (b · TPS · KV workgroups, the longest causal rows first).
// Defines: D, NS, BC, KV16, KV_F16.
#include "common.wgsl"
#include "sdpa_tile.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, TPS: u32, _b: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<vec4f>;          // [N, H·D]
@group(0) @binding(3) var<storage, read> kc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(4) var<storage, read> vc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;    // [N, H·D]
@group(0) @binding(6) var<uniform> dims: Dims;

const SG: u32 = 32u;
const WG: u32 = NS * SG;
const BR: u32 = NS * 16u;
const D4: u32 = D / 4u;
const D8: u32 = D / 8u;
const RSL: u32 = D8 + 1u;                 // th / tl row stride (slots)
const SW: u32 = max(BC, D);               // staging row (f32)
const SWS: u32 = SW / 4u;                 // … in slots
const PSL: u32 = BC / 8u + 1u;            // P row stride (slots)
const NEG: f32 = -3.0e38;
const PSC: f32 = 8192.0;                  // P (≤ 1) is split as P·2¹³: its lo stays in f16's normal range down to P ≈ 2⁻¹³

var<workgroup> th: array<vec4u, BR * RSL>;        // Q, then each K and V tile: f16 hi (BR ≥ BC rows)
var<workgroup> tl: array<vec4u, BR * RSL>;        // … lo
var<workgroup> st: array<vec4u, BR * SWS>;        // subgroup s: rows 16s … of S (16 × BC f32), then of P·V (16 × D)
var<workgroup> ph: array<vec4u, BR * PSL>;        // P hi (f16), rows as st
var<workgroup> pl: array<vec4u, BR * PSL>;        // P lo

// v rounded to f16's 11 significant bits (ties away from zero), as f32: in integers, because a float round trip
// f32(f16(v)) may be folded away by the compiler (on the H200 it was: lo came out 0, the products f16-grade)
fn hi11(v: f32) -> f32 { return bitcast<f32>((bitcast<u32>(v) + 0x1000u) & 0xffffe000u); }

// two f32 → (hi pair, lo pair) of f16: hi = f16(hi11(v)) (exact in f16's normal range), lo = f16(v − hi)
fn split2(v: vec2f) -> vec2u {
  let h = vec2f(hi11(v.x), hi11(v.y));
  return vec2u(pack2x16float(h), pack2x16float(v - h));
}

// row r, slot d8 of th / tl ← 8 values
fn stage(r: u32, d8: u32, a: vec4f, b: vec4f) {
  let s0 = split2(a.xy);
  let s1 = split2(a.zw);
  let s2 = split2(b.xy);
  let s3 = split2(b.zw);
  th[r * RSL + d8] = vec4u(s0.x, s1.x, s2.x, s3.x);
  tl[r * RSL + d8] = vec4u(s0.y, s1.y, s2.y, s3.y);
}

// keys jb … jb + BC − 1 of cache `which` (0: K, 1: V) into th / tl; rows past jmax are zeros
fn load_tile(which: u32, base: u32, KVD: u32, jb: u32, jmax: u32, lid: u32) {
  for (var e = lid; e < BC * D8; e += WG) {
    let j = e / D8;
    let d8 = e % D8;
    var a = vec4f(0.0);
    var b = vec4f(0.0);
    if (jb + j <= jmax) {
#if KV16
      let i = (base + (jb + j) * KVD) / 8u + d8;
      var w: vec4u;
      if (which == 0u) { w = kc[i]; } else { w = vc[i]; }
      a = widen(w.xy);
      b = widen(w.zw);
#else
      let i = (base + (jb + j) * KVD) / 4u + 2u * d8;
      if (which == 0u) { a = bitcast<vec4f>(kc[i]); b = bitcast<vec4f>(kc[i + 1u]); } else { a = bitcast<vec4f>(vc[i]); b = bitcast<vec4f>(vc[i + 1u]); }
#endif
    }
    stage(j, d8, a, b);
  }
}

fn st_at(i: u32) -> f32 { return bitcast<f32>(st[i / 4u][i % 4u]); }

@compute @workgroup_size(WG)
fn sdpa_sgmat(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let KV = dims.KV;
  let G = dims.H / KV;
  let rt = row_tile(wg.x + wg.y * ng.x);
  if (rt.r0 >= rt.rows) { return; }

  // Q (rows past the sequence's are zeros) → this subgroup's fragments
  for (var e = lid; e < BR * D8; e += WG) {
    let r = e / D8;
    let d8 = e % D8;
    var a = vec4f(0.0);
    var b = vec4f(0.0);
    if (rt.r0 + r < rt.rows) {
      let rr = rt.r0 + r;
      let o = q_row(rt, rr) * D4 + 2u * d8;
      a = q[o];
      b = q[o + 1u];
    }
    stage(r, d8, a, b);
  }
  workgroupBarrier();
  //@ qload
  workgroupBarrier();

  // this lane's row (rl) and half (hf)
  let rl = lane / 2u;
  let hf = lane % 2u;
  let rr = rt.r0 + 16u * sg + rl;
  let p = rt.cu.pos + rr / G;
  var lo = 0u;
  if (dims.window > 0u && p + 1u > dims.window) { lo = p + 1u - dims.window; }
  if (rr >= rt.rows) { lo = 0xffffffffu; }
  var m = NEG;
  var lsum = 0.0;
  var o = array<f32, D / 2u>();   // dims nf·16 + hf·8 + e of this row (nf < D/16, e < 8)
  let sb = 16u * sg * SWS;        // this subgroup's staging block (slots)
  let pb = 16u * sg * PSL;        // … and P rows

  let KVD = KV * D;
  let base = rt.cu.slot * dims.ctx * KVD + rt.kh * D;
  for (var jb = rt.jstart; jb <= rt.pmax; jb += BC) {
    load_tile(0u, base, KVD, jb, rt.pmax, lid);
    workgroupBarrier();
    //@ scores
    workgroupBarrier();   // S staged; K read
    load_tile(1u, base, KVD, jb, rt.pmax, lid);
    // softmax of row rl over keys hf·BC/2 …
    var s = array<f32, BC / 2u>();
    var mx = NEG;
    for (var e = 0u; e < BC / 2u; e++) {
      let key = jb + hf * (BC / 2u) + e;
      let v = select(NEG, st_at(4u * sb + rl * SW + hf * (BC / 2u) + e) * dims.scale, key <= p && key >= lo);
      s[e] = v;
      mx = max(mx, v);
    }
    let mn = max(m, max(mx, subgroupShuffleXor(mx, 1u)));
    let corr = exp(m - mn);
    m = mn;
    var ls = lsum * corr;
    for (var e = 0u; e < BC / 2u; e += 8u) {
      var hs: array<u32, 4>;
      var ls4: array<u32, 4>;
      for (var k = 0u; k < 4u; k++) {
        let key = jb + hf * (BC / 2u) + e + 2u * k;
        let e0 = select(0.0, exp(s[e + 2u * k] - mn), key <= p && key >= lo);
        let e1 = select(0.0, exp(s[e + 2u * k + 1u] - mn), key + 1u <= p && key + 1u >= lo);
        ls += e0 + e1;
        let sp = split2(vec2f(e0, e1) * PSC);
        hs[k] = sp.x;
        ls4[k] = sp.y;
      }
      let slot = pb + rl * PSL + (hf * (BC / 2u) + e) / 8u;
      ph[slot] = vec4u(hs[0], hs[1], hs[2], hs[3]);
      pl[slot] = vec4u(ls4[0], ls4[1], ls4[2], ls4[3]);
    }
    lsum = ls;
    workgroupBarrier();   // P and the V tile staged
    //@ pv
    workgroupBarrier();   // P·V staged
    for (var nf = 0u; nf < D / 16u; nf++) {
      for (var e = 0u; e < 8u; e++) {
        o[nf * 8u + e] = o[nf * 8u + e] * corr + st_at(4u * sb + rl * SW + nf * 16u + hf * 8u + e) * (1.0 / PSC);
      }
    }
  }

  let L = lsum + subgroupShuffleXor(lsum, 1u);
  if (rr < rt.rows) {
    let ob = q_row(rt, rr) * D;
    for (var nf = 0u; nf < D / 16u; nf++) {
      for (var e = 0u; e < 8u; e++) { out[ob + nf * 16u + hf * 8u + e] = o[nf * 8u + e] / L; }
    }
  }
}
