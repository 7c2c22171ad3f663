// sdpa_split_kp: sdpa_split's first pass with the threads laid out by key ("key-parallel", the plan's KP): the same
// splits, partials and combine (sdpa_combine.wgsl). One workgroup per (token, KV head, split) takes its split in
// blocks of WG keys. Scores: thread i takes key jb + i of the block, reads its K row (U 16-byte units: 4 f32 or
// 8 16-bit values, sdpa_unpack.wgsl) and forms the dot products with the G = H/KV query heads' q (pre-scaled, in workgroup memory: every thread
// reads the same address, a broadcast) — each (key, head) score formed once, by one thread, no lanes repeating its
// softmax. The block's max per head (subgroupMax per subgroup of SGS lanes, then workgroup memory; SG_RED off: a
// tree through workgroup memory) moves the running max m; each thread keeps its own running l per head, and writes
// p = exp(s − m) to workgroup memory. Values: thread (pair li % NQ = (head gp, unit dq), subset li / NQ < KS) adds
// p·V over the keys k ≡ subset (mod KS) of the block, VB V units in flight; the threads of one unit read the same
// V row for each head (a broadcast) and consecutive units of it (coalesced). At the end l is summed over the
// workgroup and acc over the KS subsets, and the partials (m, l, acc) are written as sdpa_split writes them.
// Three barriers a block. spec-deltanet-attention-qwen3next.md §1.7.
// Bindings: step uniform; stepmeta u32; q [N, H·D] f32 (as vec4f); kc, vc [slots, ctx, KV·D] stored as KVDT in u32
// words, read as 16-byte units (vec4u); part
// f32 scratch, per (token, head) row of dims.RS floats: m_s at s, l_s at S + s, acc_s at MLW + s·D (MLW = 2S
// rounded up to 4). Dispatch: WG threads, N·KV·S workgroups (2-D grid), split fastest. Each split is a multiple of
// WG keys (ceil(L/S) rounded up). Defines: WG (a power of two ≥ NQ), G, U (units a row: D / 4, or D / 8 when KV16),
// VB, SG_RED, SGS (the adapter's smallest subgroup: lanes of SGS consecutive indices lie in one subgroup), KV16,
// KV_F16 (q and acc in unpk's order over 16-bit caches, acc put back in element order when written). Accumulates in f32.
#include "common.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, S: u32, RS: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<vec4f>;          // [N, H·D]
@group(0) @binding(3) var<storage, read> kc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(4) var<storage, read> vc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(5) var<storage, read_write> part: array<f32>;   // [N·H, RS]
@group(0) @binding(6) var<uniform> dims: Dims;

#if KV16
const EPU = 2u;        // vec4f a unit
#else
const EPU = 1u;
#endif
const NQ = G * U;      // (head, unit) pairs of the value pass
const KS = WG / NQ;    // key subsets of the value pass
#if SG_RED
const NR = WG / SGS;   // block maxima a head: one a subgroup
#else
const NR = WG;
#endif

var<workgroup> qs: array<vec4f, NQ * EPU>;   // q of the G heads, pre-scaled, in unit order
var<workgroup> ps: array<f32, G * WG>;    // the block's p, head-major
var<workgroup> red: array<f32, G * WG>;   // reductions, head-major
var<workgroup> accs: array<vec4f, WG * EPU>;

#include "sdpa_unpack.wgsl"

// the max over the workgroup of each head's v[g], returned to every invocation (barriers before and after the reads)
fn wg_max(li: u32, v: array<f32, G>) -> array<f32, G> {
  var r: array<f32, G>;
#if SG_RED
  for (var g = 0u; g < G; g++) {
    let x = subgroupMax(v[g]);
    if (li % SGS == 0u) { red[g * NR + li / SGS] = x; }
  }
  workgroupBarrier();
  for (var g = 0u; g < G; g++) {
    var a = red[g * NR];
    for (var x = 1u; x < NR; x++) { a = max(a, red[g * NR + x]); }
    r[g] = a;
  }
#else
  for (var g = 0u; g < G; g++) { red[g * WG + li] = v[g]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { for (var g = 0u; g < G; g++) { red[g * WG + li] = max(red[g * WG + li], red[g * WG + li + s]); } }
    workgroupBarrier();
  }
  for (var g = 0u; g < G; g++) { r[g] = red[g * WG]; }
#endif
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn sdpa_split_kp(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.H;
  let D = dims.D;
  let S = dims.S;
  let KV = dims.KV;
  let RS = dims.RS;
  let MLW = (2u * S + 3u) / 4u * 4u;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * S * KV) { return; }
  let sp = idx % S;
  let kh = (idx / S) % KV;
  let t = idx / (S * KV);
  let cu = cursor(seq_of(t));
  let p = cu.pos + t - cu.start;
  var j0 = 0u;
  if (dims.window > 0u && p + 1u > dims.window) { j0 = p + 1u - dims.window; }
  let L = p + 1u - j0;
  let chunk = ((L + S - 1u) / S + WG - 1u) / WG * WG;
  let js = j0 + sp * chunk;
  let je = min(p + 1u, js + chunk);
  let h0 = kh * G;
  if (js >= je) {   // an empty split (short context): partials that weigh nothing
    for (var g = 0u; g < G; g++) {
      let row = (t * H + h0 + g) * RS;
      if (li == 0u) { part[row + sp] = -3.0e38; part[row + S + sp] = 0.0; }
      for (var d = li; d < D; d += WG) { part[row + MLW + sp * D + d] = 0.0; }
    }
    return;
  }
  let qo = (t * H + h0) * D / 4u;   // the G heads' q, contiguous
  for (var i = li; i < NQ; i += WG) {
#if KV16
    let o = to_unit_order(q[qo + 2u * i], q[qo + 2u * i + 1u]);
    qs[2u * i] = o[0] * dims.scale;
    qs[2u * i + 1u] = o[1] * dims.scale;
#else
    qs[i] = q[qo + i] * dims.scale;
#endif
  }
  workgroupBarrier();

  let rstride = KV * U;                               // units per cache row
  let rbase = cu.slot * dims.ctx * rstride + kh * U;  // key 0 of this slot and KV head
  let pr = li % NQ;
  let gp = pr / U;    // the value pass: this thread's head,
  let dq = pr % U;    // unit
  let ks = li / NQ;   // and key subset
  var m: array<f32, G>;
  var lt: array<f32, G>;
  for (var g = 0u; g < G; g++) { m[g] = -3.0e38; lt[g] = 0.0; }
  var acc: array<vec4f, EPU>;
  for (var jb = js; jb < je; jb += WG) {
    let j = jb + li;
    var s: array<f32, G>;
    for (var g = 0u; g < G; g++) { s[g] = -3.0e38; }
    if (j < je) {
      for (var g = 0u; g < G; g++) { s[g] = 0.0; }
      let r = rbase + j * rstride;
      for (var u = 0u; u < U; u++) {
        let kv = unpk(kc[r + u]);
        for (var g = 0u; g < G; g++) {
          for (var e = 0u; e < EPU; e++) { s[g] += dot(qs[(g * U + u) * EPU + e], kv[e]); }
        }
      }
    }
    let bm = wg_max(li, s);
    var cg = 1.0;   // the rescale of this thread's head in the value pass
    for (var g = 0u; g < G; g++) {
      let mn = max(m[g], bm[g]);
      let corr = exp(m[g] - mn);
      var e = 0.0;
      if (j < je) { e = exp(s[g] - mn); }
      ps[g * WG + li] = e;
      lt[g] = lt[g] * corr + e;
      m[g] = mn;
      if (g == gp) { cg = corr; }
    }
    workgroupBarrier();
    if (ks < KS) {
      for (var e = 0u; e < EPU; e++) { acc[e] *= cg; }
      let kend = min(WG, je - jb);
      let pb = gp * WG;
      let vb = rbase + jb * rstride + dq;
      var k = ks;
      for (; k + (VB - 1u) * KS < kend; k += VB * KS) {   // VB loads in flight
        var vv: array<vec4u, VB>;
        for (var b = 0u; b < VB; b++) { vv[b] = vc[vb + (k + b * KS) * rstride]; }
        for (var b = 0u; b < VB; b++) {
          let x = unpk(vv[b]);
          let pk = ps[pb + k + b * KS];
          for (var e = 0u; e < EPU; e++) { acc[e] += pk * x[e]; }
        }
      }
      for (; k < kend; k += KS) {
        let x = unpk(vc[vb + k * rstride]);
        let pk = ps[pb + k];
        for (var e = 0u; e < EPU; e++) { acc[e] += pk * x[e]; }
      }
    }
    workgroupBarrier();
  }

  // l summed over the workgroup (a tree per head), acc over the KS subsets
  for (var g = 0u; g < G; g++) { red[g * WG + li] = lt[g]; }
  for (var e = 0u; e < EPU; e++) { accs[li * EPU + e] = acc[e]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { for (var g = 0u; g < G; g++) { red[g * WG + li] += red[g * WG + li + s]; } }
    workgroupBarrier();
  }
  if (li < NQ) {
    var a: array<vec4f, EPU>;
    for (var x = 0u; x < KS; x++) {
      for (var e = 0u; e < EPU; e++) { a[e] += accs[(x * NQ + li) * EPU + e]; }
    }
    let row = (t * H + h0 + gp) * RS;
    let o = row + MLW + sp * D + 4u * EPU * dq;
#if KV16
    let w = to_element_order(a[0], a[1]);
    for (var c = 0u; c < 4u; c++) { part[o + c] = w[0][c]; part[o + 4u + c] = w[1][c]; }
#else
    for (var c = 0u; c < 4u; c++) { part[o + c] = a[0][c]; }
#endif
    if (dq == 0u) {
      var mg = 0.0;
      for (var g = 0u; g < G; g++) { if (g == gp) { mg = m[g]; } }
      part[row + sp] = mg;
      part[row + S + sp] = red[gp * WG];
    }
  }
}
