// sdpa_split: the first pass of split-K ("flash-decoding") attention, reading each K/V element once per query
// token. Each query token's key range j0..p (as in sdpa.wgsl: causal, the last W keys when windowed) is cut into S
// splits of `chunk` keys (ceil(L/S) rounded up to a multiple of the KB keys one iteration takes); the H/KV query
// heads of a KV head form HG head groups of G heads (query heads hg·G … hg·G + G − 1 for head group hg of the
// KV·HG); one workgroup per (token, KW head groups, split) scores the G query heads of each of its head groups
// against each key of its split and writes G partials of each (m, l, acc): m = max score, l = Σ exp(s − m),
// acc = Σ exp(s − m)·v (unnormalised). sdpa_combine.wgsl merges the S partials of each (token, head).
// spec-deltanet-attention-qwen3next.md §1.7.
// Bindings: step uniform; stepmeta u32; q [N, H·D] f32 (as vec4f); kc, vc [slots, ctx, KV·D] stored as KVDT in u32
// words, read as 16-byte units (vec4u: 4 f32, or 8 bf16/f16 when KV16; KV_F16 picks f16); part f32 scratch, per
// (token, head) row of dims.RS floats: m_s at s, l_s at S + s, acc_s at MLW + s·D (MLW = 2S rounded up to 4).
// Dispatch: WG threads, N·(KV·HG / KW)·S workgroups (2-D grid), split fastest; a workgroup takes KW consecutive
// head groups ("slots"): KW KV heads at HG = 1 (the rows of its keys, contiguous in the token-major cache, instead
// of 256-byte pieces 2 KiB apart at llama-1b's f32 cache), or KW head groups of one KV head (KW dividing HG: the
// same keys for all of them, read by the same subgroups, so each cache row comes from memory once for the KW·G
// query heads; the plan's QS), or KW / HG KV heads of HG groups each. Lanes come in groups of TPK (a power of
// two); group kg takes slot kg % KW of the workgroup's and, as the (kg / KW)-th of NKG = KPI / KW groups of it
// (KPI = WG / TPK groups), keys jb + kg / KW + k·NKG (k < KU) of each block of KB = NKG·KU keys, so one k of the
// KPI groups reads consecutive cache rows; lane `lane` of it units lane + uu·TPK (uu < UPL) of the U units of a
// key row: it loads those units of K and V for its KU keys first, then forms its share of the G dot products (q of
// its units held in registers, pre-scaled), sums them over the group (SG_RED: subgroupShuffleXor butterflies,
// every lane ending with the same bits, the group lying inside one subgroup since TPK ≤ the adapter's smallest
// subgroup; else through workgroup memory), and runs its own online softmax per head over the keys its group sees
// — no barrier in the key loop. At the end the NKG groups' states of each head are merged through workgroup memory.
// 16-bit units unpack to two vec4f: f16 as elements 0..3, 4..7; bf16 as the even and the odd elements (q and acc
// are kept in the same order and put back in element order when written).
// PF (prefetch): the next iteration's K/V units are loaded before this one's arithmetic, one iteration of loads always
// in flight. DIRECT (the `direct` variant: one split, S = 1): no partials, the merged acc / l is written as the
// attention output, `part` bound to out [N, H·D] — a single pass, no combine dispatch, KW 1. SG_MERGE (with SG_RED,
// TPK·KW a power of two below SGS: the adapter's smallest subgroup): the end-of-split merge of the key groups'
// states starts with subgroup butterflies (below). Defines: WG, TPK, UPL, U, G, HG, KW, KU, SMF
// (workgroup floats), SG_RED, SG_MERGE, SGS, PF, DIRECT, KH_FAST (the grid's head groups fastest, so the
// workgroups reading the KV heads of one cache row start together; else the splits fastest), KV16, KV_F16.
// Accumulates in f32.
#include "common.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, S: u32, RS: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<vec4f>;          // [N, H·D]
@group(0) @binding(3) var<storage, read> kc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(4) var<storage, read> vc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(5) var<storage, read_write> part: array<f32>;   // [N·H, RS]
@group(0) @binding(6) var<uniform> dims: Dims;

const KPI = WG / TPK;    // key groups
const NKG = KPI / KW;    // key groups of each of the KW head-group slots
const KB = NKG * KU;     // keys per iteration
#if SG_MERGE
const NM = WG / SGS * KW;   // merge slots: one a (subgroup, head slot)
#else
const NM = KPI;          // merge slots: one a key group
#endif
#if KV16
const EPU = 2u;          // vec4f per unit
#else
const EPU = 1u;
#endif
const QN = G * UPL * EPU;

var<workgroup> sm: array<f32, SMF>;
var<workgroup> mx: array<f32, NM>;
var<workgroup> ls: array<f32, NM>;

#include "sdpa_unpack.wgsl"

struct KvUnits { k: array<vec4u, KU * UPL>, v: array<vec4u, KU * UPL> }

// the K and V units this lane reads for keys jb + gi + k·NKG (k < KU), clamped to the split's last key je − 1
fn load_kv(rbase: u32, rstride: u32, jb: u32, je: u32, gi: u32, lane: u32) -> KvUnits {
  var w: KvUnits;
  for (var k = 0u; k < KU; k++) {
    let r = rbase + min(jb + gi + k * NKG, je - 1u) * rstride;
    for (var uu = 0u; uu < UPL; uu++) {
      let u = min(lane + uu * TPK, U - 1u);
      w.k[k * UPL + uu] = kc[r + u];
      w.v[k * UPL + uu] = vc[r + u];
    }
  }
  return w;
}

@compute @workgroup_size(WG)
fn sdpa_split(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.H;
  let D = dims.D;
  let S = dims.S;
  let KV = dims.KV;
  let RS = dims.RS;
  let MLW = (2u * S + 3u) / 4u * 4u;
  let idx = wg.x + wg.y * ng.x;
  let NB = KV * HG / KW;   // workgroups a (token, split)
  if (idx >= step.n * S * NB) { return; }
#if KH_FAST
  let hb = idx % NB;
  let sp = (idx / NB) % S;
#else
  let sp = idx % S;
  let hb = (idx / S) % NB;
#endif
  let t = idx / (S * NB);
  let kg = li / TPK;
  let lane = li % TPK;
  let khl = kg % KW;       // this group's head-group slot among the workgroup's KW
  let gi = kg / KW;        // and its index among that slot's NKG groups
  let hg = hb * KW + khl;
  let kh = hg / HG;
  let cu = cursor(seq_of(t));
  let p = cu.pos + t - cu.start;
  var j0 = 0u;
  if (dims.window > 0u && p + 1u > dims.window) { j0 = p + 1u - dims.window; }
  let L = p + 1u - j0;
  let chunk = ((L + S - 1u) / S + KB - 1u) / KB * KB;
  let js = j0 + sp * chunk;
  let je = min(p + 1u, js + chunk);
  let h0 = hg * G;
#if !DIRECT
  if (js >= je) {   // an empty split (short context): partials that weigh nothing
    for (var g = 0u; g < KW * G; g++) {
      let row = (t * H + hb * KW * G + g) * RS;
      if (li == 0u) { part[row + sp] = -3.0e38; part[row + S + sp] = 0.0; }
      for (var d = li; d < D; d += WG) { part[row + MLW + sp * D + d] = 0.0; }
    }
    return;
  }
#endif

  // q of this lane's units for the G heads, scaled; units past U (U not a multiple of TPK) are zero
  var qr: array<vec4f, QN>;
  for (var g = 0u; g < G; g++) {
    let qo = (t * H + h0 + g) * D / 4u;
    for (var uu = 0u; uu < UPL; uu++) {
      let u = lane + uu * TPK;
      let uc = min(u, U - 1u);
      var z = dims.scale;
      if (u >= U) { z = 0.0; }
#if KV16
      let o = to_unit_order(q[qo + 2u * uc], q[qo + 2u * uc + 1u]);
      qr[(g * UPL + uu) * 2u] = o[0] * z;
      qr[(g * UPL + uu) * 2u + 1u] = o[1] * z;
#else
      qr[g * UPL + uu] = q[qo + uc] * z;
#endif
    }
  }

  let rstride = KV * U;                              // units per cache row
  let rbase = cu.slot * dims.ctx * rstride + kh * U;  // key 0 of this slot and KV head
  var m: array<f32, G>;
  var l: array<f32, G>;
  var acc: array<vec4f, QN>;
  for (var g = 0u; g < G; g++) { m[g] = -3.0e38; }
#if PF
  var nx = load_kv(rbase, rstride, js, je, gi, lane);
#endif
  for (var jb = js; jb < je; jb += KB) {
    // all loads in flight first (keys past the split's end are clamped to its last and masked below); PF: this
    // iteration's were issued during the last one, the next one's go out now
#if PF
    let cur = nx;
    if (jb + KB < je) { nx = load_kv(rbase, rstride, jb + KB, je, gi, lane); }
#else
    let cur = load_kv(rbase, rstride, jb, je, gi, lane);
#endif
    let kw = cur.k;
    let vw = cur.v;
    var s: array<f32, KU * G>;
    for (var i = 0u; i < KU * G; i++) { s[i] = 0.0; }
    for (var k = 0u; k < KU; k++) {
      for (var uu = 0u; uu < UPL; uu++) {
        let kv = unpk(kw[k * UPL + uu]);
        for (var g = 0u; g < G; g++) {
          for (var e = 0u; e < EPU; e++) { s[k * G + g] += dot(qr[(g * UPL + uu) * EPU + e], kv[e]); }
        }
      }
    }
#if SG_RED
    for (var o = TPK / 2u; o > 0u; o >>= 1u) {
      for (var i = 0u; i < KU * G; i++) { s[i] += subgroupShuffleXor(s[i], o); }
    }
#else
    for (var i = 0u; i < KU * G; i++) { sm[li * KU * G + i] = s[i]; }
    workgroupBarrier();
    for (var i = 0u; i < KU * G; i++) {
      var a = 0.0;
      for (var x = 0u; x < TPK; x++) { a += sm[(kg * TPK + x) * KU * G + i]; }
      s[i] = a;
    }
    workgroupBarrier();
#endif
    // online softmax of this group's keys, per head
    var pw: array<f32, KU * G>;
    for (var g = 0u; g < G; g++) {
      var mn = m[g];
      for (var k = 0u; k < KU; k++) { if (jb + gi + k * NKG < je) { mn = max(mn, s[k * G + g]); } }
      let corr = exp(m[g] - mn);
      var lg = l[g] * corr;
      for (var k = 0u; k < KU; k++) {
        var e = 0.0;
        if (jb + gi + k * NKG < je) { e = exp(s[k * G + g] - mn); }
        pw[k * G + g] = e;
        lg += e;
      }
      if (mn > m[g]) { for (var i = 0u; i < UPL * EPU; i++) { acc[g * UPL * EPU + i] *= corr; } }   // a new max: rare after the first keys
      l[g] = lg;
      m[g] = mn;
    }
    for (var k = 0u; k < KU; k++) {
      for (var uu = 0u; uu < UPL; uu++) {
        let vv = unpk(vw[k * UPL + uu]);
        for (var g = 0u; g < G; g++) {
          for (var e = 0u; e < EPU; e++) { acc[(g * UPL + uu) * EPU + e] += pw[k * G + g] * vv[e]; }
        }
      }
    }
  }

  // merge the KPI groups' states, one head at a time: sm holds each merge slot's rescaled acc in element order.
  // SG_MERGE: first inside each subgroup of SGS lanes (butterflies over the group bits of the lane index above the
  // KW slot bits, offsets TPK·KW … SGS/2 — TPK·KW a power of two below SGS —: every group of the subgroup ends with
  // its slot's merged state, as with the key loop's reductions the lanes of SGS consecutive indices lying in one
  // subgroup), then the NM = (WG / SGS)·KW (subgroup, slot) states through workgroup memory; else each of the
  // NM = KPI groups' states through workgroup memory.
#if SG_MERGE
  for (var g = 0u; g < G; g++) {
    for (var o = TPK * KW; o < SGS; o <<= 1u) {
      let mo = subgroupShuffleXor(m[g], o);
      let lo = subgroupShuffleXor(l[g], o);
      let Mg = max(m[g], mo);
      let wa = exp(m[g] - Mg);
      let wb = exp(mo - Mg);
      l[g] = l[g] * wa + lo * wb;
      for (var i = 0u; i < UPL * EPU; i++) {
        let j = g * UPL * EPU + i;
        acc[j] = acc[j] * wa + subgroupShuffleXor(acc[j], o) * wb;
      }
      m[g] = Mg;
    }
  }
  let mg = li / SGS * KW + khl;      // merge slot: the (subgroup, head slot)
  let lead = li % SGS < TPK * KW;    // the subgroup's first group of each slot writes it
#else
  let mg = kg;
  let lead = true;
#endif
  for (var g = 0u; g < G; g++) {
    if (lead && lane == 0u) { mx[mg] = m[g]; ls[mg] = l[g]; }
    workgroupBarrier();
    var M = -3.0e38;
    for (var x = 0u; x < NM / KW; x++) { M = max(M, mx[x * KW + khl]); }
    let w = exp(m[g] - M);   // 0 for a slot that saw no key (m = −3e38); slot 0 always sees one
    for (var uu = 0u; uu < UPL; uu++) {
      let u = lane + uu * TPK;
      if (u < U && lead) {
#if KV16
        let o = to_element_order(acc[(g * UPL + uu) * 2u], acc[(g * UPL + uu) * 2u + 1u]);
        for (var c = 0u; c < 4u; c++) { sm[mg * D + 8u * u + c] = o[0][c] * w; sm[mg * D + 8u * u + 4u + c] = o[1][c] * w; }
#else
        let a = acc[g * UPL + uu];
        for (var c = 0u; c < 4u; c++) { sm[mg * D + 4u * u + c] = a[c] * w; }
#endif
      }
    }
    workgroupBarrier();
    // the KW slots' merged states (merge slots x·KW + c of slot c); DIRECT: KW = 1
    var lsum = 0.0;   // of this lane's head
    for (var x = 0u; x < NM / KW; x++) { lsum += ls[x * KW + khl] * exp(mx[x * KW + khl] - M); }
    for (var i = li; i < KW * D; i += WG) {
      let c = i / D;
      let d = i % D;
      var a = 0.0;
      for (var x = 0u; x < NM / KW; x++) { a += sm[(x * KW + c) * D + d]; }
#if DIRECT
      part[(t * H + h0 + g) * D + d] = a / lsum;
#else
      part[(t * H + (hb * KW + c) * G + g) * RS + MLW + sp * D + d] = a;
#endif
    }
#if !DIRECT
    if (li < KW * TPK && lane == 0u) {   // group c (head c, gi 0) writes head c's m and l
      let row = (t * H + h0 + g) * RS;
      part[row + sp] = M;
      part[row + S + sp] = lsum;
    }
#endif
    workgroupBarrier();
  }
}
