// In-kernel routing of the fused decode GEMVs (moe_gu, moe_down with ROUTE): moe_topk_sg.wgsl's selection for one
// token row, by the whole workgroup, into workgroup memory — rt_e[j] = the j-th expert (value descending, lower index
// first on ties; always < E, as moe_topk stores it, even when NaN logits select none), rt_w[j] = its softmax probability (NORM_TOPK: renormalised over the K) — so the router's logits go
// straight from its GEMV to the experts (no moe_topk dispatch). Every workgroup of the token computes the same
// selection from the same logits. Needs in the including file: step, WG (≥ 64, dividing EMAX), EMAX, KMAX,
// NORM_TOPK, and `fn rt_logit(i: u32) -> f32` (logit i of the bound router logits [N, LW]). Call route() from uniform control flow (barriers inside); it
// ends with a barrier, after which every thread may read rt_e / rt_w.

const RPER = EMAX / WG;
var<workgroup> rt_v: array<array<f32, WG>, 2>;
var<workgroup> rt_i: array<array<u32, WG>, 2>;
var<workgroup> rt_e: array<u32, KMAX>;
var<workgroup> rt_w: array<f32, KMAX>;

fn rt_before(v: f32, i: u32, w: f32, k: u32) -> bool { return v > w || (v == w && i < k); }

// lane = local_invocation_index, sl / sgs = subgroup invocation id / size; base = the row's first logit; live: a
// real row (otherwise nothing is read and rt_* hold no meaning)
fn route(lane: u32, sl: u32, sgs: u32, base: u32, E: u32, K: u32, live: bool) {
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
}
