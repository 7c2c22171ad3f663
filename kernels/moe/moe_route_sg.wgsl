// In-kernel routing of the fused decode GEMVs (moe_gu, moe_down with ROUTE): moe_topk_sg.wgsl's selection for one
// token row, by the whole workgroup, into workgroup memory — rt_e[j] = the j-th expert (value descending, lower index
// first on ties; always < E, as moe_topk stores it, even when NaN logits select none), rt_w[j] = its softmax probability (NORM_TOPK: renormalised over the K) — so the router's logits go
// straight from its GEMV to the experts (no moe_topk dispatch). Every workgroup of the token computes the same
// selection from the same logits. Needs in the including file: step, WG (≥ 64, dividing EMAX), EMAX, KMAX,
// NORM_TOPK, and `fn rt_logit(i: u32) -> f32` (logit i of the bound router logits [N, LW]). Call route() from uniform control flow (barriers inside); it
// ends with a barrier, after which every thread may read rt_e / rt_w.
// RT_K (the launch's K, set when K ≤ 16 = RT_KMAX in moe_route.ts): the latency-bound path of the decode GEMVs, two
// barriers (three without NORM_TOPK) instead of K + 2: every subgroup selects its own top-K of its threads' logits
// (K rounds of u32 subgroupMax / subgroupMin on order-preserving keys, no barrier), writes that sorted list to
// workgroup memory, and after one barrier every subgroup merges the WG / sg lists (K rounds again, each lane holding
// the heads of its lists). The order is the logits' (descending, lower index first on ties), which is the
// probabilities' order of the reference (f64 softmax); weights exp(l − max) / Σ over the K (NORM_TOPK) or over all E.

const RPER = EMAX / WG;
var<workgroup> rt_v: array<array<f32, WG>, 2>;
var<workgroup> rt_i: array<array<u32, WG>, 2>;
var<workgroup> rt_e: array<u32, KMAX>;
var<workgroup> rt_w: array<f32, KMAX>;

fn rt_before(v: f32, i: u32, w: f32, k: u32) -> bool { return v > w || (v == w && i < k); }

// lane = local_invocation_index, sl / sgs = subgroup invocation id / size; base = the row's first logit; live: a
// real row (otherwise nothing is read and rt_* hold no meaning)
fn route(lane: u32, sl: u32, sgs: u32, base: u32, E: u32, K: u32, live: bool) {
#if RT_K
  route_fast(lane, sl, sgs, base, E, K, live);
#else
  let nsg = WG / sgs;
  let si = lane / sgs;
  var p: array<f32, RPER>;
  var m = -3.0e38;
  for (var j = 0u; j < RPER; j++) {
    let e = lane + j * WG;
    p[j] = -3.0e38;
    if (live && e < E) { p[j] = rt_logit(base + e); }
    m = max(m, p[j]);
  }
  m = subgroupMax(m);
  if (sl == 0u) { rt_v[0][si] = m; }
  workgroupBarrier();
  m = rt_v[0][0];
  for (var s = 1u; s < nsg; s++) { m = max(m, rt_v[0][s]); }
  var sum = 0.0;
  for (var j = 0u; j < RPER; j++) {
    if (lane + j * WG < E) { p[j] = exp(p[j] - m); sum += p[j]; }
  }
  sum = subgroupAdd(sum);
  if (sl == 0u) { rt_v[1][si] = sum; }
  workgroupBarrier();
  sum = 0.0;
  for (var s = 0u; s < nsg; s++) { sum += rt_v[1][s]; }
  let inv = 1.0 / sum;
  var taken = 0u;
  var bv = -1.0;
  var bi = 0xffffffffu;
  for (var j = 0u; j < RPER; j++) {
    let e = lane + j * WG;
    if (e < E) { p[j] = p[j] * inv; if (rt_before(p[j], e, bv, bi)) { bv = p[j]; bi = e; } }
  }
  var tot = 0.0;
  for (var k = 0u; k < K; k++) {
    let b = k % 2u;
    let mv = subgroupMax(bv);
    let mi = subgroupMin(select(0xffffffffu, bi, bv == mv));
    if (sl == 0u) { rt_v[b][si] = mv; rt_i[b][si] = mi; }
    workgroupBarrier();
    var wv = rt_v[b][0];
    var wi = rt_i[b][0];
    for (var s = 1u; s < nsg; s++) { if (rt_before(rt_v[b][s], rt_i[b][s], wv, wi)) { wv = rt_v[b][s]; wi = rt_i[b][s]; } }
    tot += wv;
    if (lane == 0u) { rt_e[k] = min(wi, E - 1u); rt_w[k] = wv; }   // NaN logits select none: an id < E all the same (as moe_topk)
    if (wi % WG == lane && wi != 0xffffffffu) {
      taken |= 1u << (wi / WG);
      bv = -1.0;
      bi = 0xffffffffu;
      for (var j = 0u; j < RPER; j++) {
        let e = lane + j * WG;
        if (e < E && (taken & (1u << j)) == 0u && rt_before(p[j], e, bv, bi)) { bv = p[j]; bi = e; }
      }
    }
  }
  if (NORM_TOPK && lane == 0u) {
    let f = 1.0 / tot;
    for (var k = 0u; k < K; k++) { rt_w[k] *= f; }
  }
  workgroupBarrier();
#endif
}

#if RT_K
// order-preserving u32 key of a logit (larger logit, larger key); NaN → 0, which no selection takes
fn rt_key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u), 0u, v != v);
}

fn rt_val(k: u32) -> f32 { return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u)); }

const RT_L = max(1u, WG / (SGS * SGS));                        // lists a lane merges (WG / sg subgroups over sg lanes)
var<workgroup> rt_ck: array<u32, (WG / SGS) * RT_K>;           // subgroup s's top-K keys, sorted, at s·RT_K
var<workgroup> rt_ci: array<u32, (WG / SGS) * RT_K>;           // their experts
var<workgroup> rt_s: array<f32, WG / SGS>;                     // (not NORM_TOPK) the subgroups' Σ exp(l − max)

// the selection as route(); K must be RT_K
fn route_fast(lane: u32, sl: u32, sgs: u32, base: u32, E: u32, K: u32, live: bool) {
  let nsg = WG / sgs;
  let si = lane / sgs;
  var lv: array<f32, RPER>;
  var kv: array<u32, RPER>;
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var j = 0u; j < RPER; j++) {
    let e = lane + j * WG;
    lv[j] = -3.0e38;
    kv[j] = 0u;
    if (live && e < E) { lv[j] = rt_logit(base + e); kv[j] = rt_key(lv[j]); }
    if (kv[j] > bk) { bk = kv[j]; bi = e; }   // (e rising: the lower index wins a tie)
  }
  // 1. this subgroup's top-K, best first
  for (var k = 0u; k < RT_K; k++) {
    let mk = subgroupMax(bk);
    let mi = subgroupMin(select(0xffffffffu, bi, bk == mk));
    if (sl == 0u) { rt_ck[si * RT_K + k] = mk; rt_ci[si * RT_K + k] = mi; }
    if (mk != 0u && bi == mi) {
      bk = 0u;
      bi = 0xffffffffu;
      for (var j = 0u; j < RPER; j++) {
        if (lane + j * WG == mi) { kv[j] = 0u; }
        if (kv[j] > bk) { bk = kv[j]; bi = lane + j * WG; }
      }
    }
  }
  workgroupBarrier();
  // 2. every subgroup merges the nsg sorted lists: lane sl holds lists sl, sl + sgs, … (their next candidates at ptr)
  var ptr: array<u32, RT_L>;
  var top = 0.0;
  var tot = 0.0;
  for (var k = 0u; k < RT_K; k++) {
    var hk = 0u;
    var hi = 0xffffffffu;
    var hl = 0u;
    for (var q = 0u; q < RT_L; q++) {
      let l = sl + q * sgs;
      if (l < nsg && ptr[q] < RT_K) {
        let ck = rt_ck[l * RT_K + ptr[q]];
        let ci = rt_ci[l * RT_K + ptr[q]];
        if (ck > hk || (ck == hk && ck != 0u && ci < hi)) { hk = ck; hi = ci; hl = q; }
      }
    }
    let mk = subgroupMax(hk);
    let mi = subgroupMin(select(0xffffffffu, hi, hk == mk));
    if (mk != 0u && hi == mi) { ptr[hl]++; }
    if (k == 0u) { top = rt_val(mk); }
    let w = select(0.0, exp(rt_val(mk) - top), mk != 0u);
    tot += w;
    if (lane == 0u) { rt_e[k] = min(mi, E - 1u); rt_w[k] = w; }   // none left (NaN logits): an id < E all the same
  }
  if (!NORM_TOPK) {
    // the softmax's denominator over all E experts, from the top logit every subgroup found
    var s = 0.0;
    for (var j = 0u; j < RPER; j++) {
      if (live && lane + j * WG < E) { s += exp(lv[j] - top); }
    }
    s = subgroupAdd(s);
    if (sl == 0u) { rt_s[si] = s; }
    workgroupBarrier();
    tot = 0.0;
    for (var q = 0u; q < nsg; q++) { tot += rt_s[q]; }
  }
  if (lane == 0u) {
    let f = select(1.0 / tot, 0.0, tot == 0.0);
    for (var k = 0u; k < RT_K; k++) { rt_w[k] *= f; }
  }
  workgroupBarrier();
}
#endif
