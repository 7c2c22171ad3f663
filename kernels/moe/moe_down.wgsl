// moe_down: the down projections of the routed experts and of the shared expert for few tokens (decode) in one launch,
// weighted, summed and added to the residual:
//   y[t, o] += Σ_j [e_j in this part] w_j · act[t, j·I ..]·W[e_j, o]   (ROUTED; e_j = sel[t, j], w_j = sel[t, K + j])
//            + s_t · act[t, K·I ..]·Ws[o]                               (SHARED; s_t = sel[t, 2K], the shared gate)
// W [EP, C, I] is the part's down tensor (experts [E0, E0 + EP)), Ws [C, Ish] the shared one; one storage dtype, read
// in load units (moe_unit.wgsl) with fp8 block scales S / Ss.
// Bindings: step; x = act [N, AW] f32 (moe_gu); sel [N, SW] f32; W, Ws u32 units; y [N, C] f32; dims as moe_gu with
// (Ur, Us, 0, 0) = units per row of W and of Ws; S, Ss.
// Dispatch: z = token t; a 2-D grid over blocks of WG / TPR output rows o; TPR lanes per output row split the
// K·Ur routed units (expert j = unit / Ur, so short rows of many experts still fill every lane) and then the Us shared
// units, UNROLL loads in flight per lane. The token's experts and weights are read once into workgroup memory.
// Where the token's selection comes from: SEL_IN sel (moe_topk's); ROUTE: sel is the router's logits [N, LW = SW] and
// the workgroup selects the token's experts and weights itself (moe_route_sg.wgsl, as moe_gu), the shared gate
// σ(logit E) as moe_topk; ROUTE_IN: moe_gu (ROUTE_OUT) wrote it into act's columns K·I + Ish .. (sel unread).
// Reduction as moe_gu. Rows whose token has no expert in this part (and no shared expert) are left untouched.
// ROW_FAST (fp8 with one scale part per expert, RP = C): a routed unit's scale is S[sb[j] + ⌊o / BR⌋·SC + col], the
// expert's offset read once into workgroup memory and ⌊o / BR⌋ once per lane, instead of two divisions per unit.
// Defines: WG, UNROLL, VEC, SG_RED, SGS, ROUTED, SHARED, KMAX, COL_POW2, ROW_FAST, W_*, one of SEL_IN / ROUTE / ROUTE_IN.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;          // act [N, AW / 4]
@group(0) @binding(2) var<storage, read> sel: array<f32>;          // [N, SW]
@group(0) @binding(3) var<storage, read> W: array<WUNIT>;          // [EP, C, Ur]
@group(0) @binding(4) var<storage, read> Ws: array<WUNIT>;         // [C, Us]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;      // [N, C]
@group(0) @binding(6) var<uniform> dims: array<vec4u, 6>;
@group(0) @binding(7) var<storage, read> S: array<f32>;
@group(0) @binding(8) var<storage, read> Ss: array<f32>;

fn xin(xb: u32, q: u32) -> vec4f { return x[xb + q]; }

// element i of act
fn xf(i: u32) -> f32 { return x[i / 4u][i % 4u]; }

#include "moe_unit.wgsl"

#if ROUTE
fn rt_logit(i: u32) -> f32 { return sel[i]; }
#include "moe_route_sg.wgsl"
#endif

var<workgroup> ex: array<u32, KMAX>;    // first W row of the token's j-th expert in this part (0xffffffff: not in it)
var<workgroup> wt: array<f32, KMAX>;    // its weight (0 when not in this part); wt[K] the shared gate
var<workgroup> sb: array<u32, KMAX>;    // ROW_FAST: its first scale row's offset in S (expert · SRP · SC)

// ROW_FAST: the routed scale of unit q of expert slot j for the lane's row block ob = ⌊o / BR⌋·SC
fn rscale(j: u32, ob: u32, q: u32) -> f32 {
#if W_FP8
#if COL_POW2
  return S[sb[j] + ob + (q >> dims[4].x)] * FP8_UNSCALE;
#else
  return S[sb[j] + ob + (q * EPU) / dims[4].x] * FP8_UNSCALE;
#endif
#else
  return 1.0;
#endif
}

@compute @workgroup_size(WG)
#if SG_RED
fn moe_down(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32, @builtin(subgroup_invocation_id) sl: u32) {
#else
fn moe_down(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  _ = &W;
  _ = &Ws;
  _ = &S;
  _ = &Ss;
  _ = &sel;
  let C = dims[0].x;
  let I = dims[0].y;
  let K = dims[0].z;
  let E0 = dims[0].w;
  let EP = dims[1].x;
  let SW = dims[1].y;
  let AW = dims[1].w;
  let TPR = dims[4].z;
  let Ur = dims[5].x;
  let Us = dims[5].y;
  let t = g.z;
#if ROUTE
  route(li, sl, sg, t * SW, dims[5].z, K, t < step.n);
  if (li < K) {
    let e = rt_e[li];
    let inPart = ROUTED && e >= E0 && e < E0 + EP;
    ex[li] = select(0xffffffffu, (e - E0) * C, inPart);
    wt[li] = select(0.0, rt_w[li], inPart);
    sb[li] = select(0u, (e - E0) * dims[2].y * dims[2].w, inPart);
  }
  if (SHARED && li == K && t < step.n) { wt[K] = 1.0 / (1.0 + exp(-sel[t * SW + dims[5].z])); }
#endif
#if SEL_IN
  if (li < K) {
    let e = u32(sel[t * SW + li]);
    let inPart = ROUTED && e >= E0 && e < E0 + EP;
    ex[li] = select(0xffffffffu, (e - E0) * C, inPart);
    wt[li] = select(0.0, sel[t * SW + K + li], inPart);
    sb[li] = select(0u, (e - E0) * dims[2].y * dims[2].w, inPart);
  }
  if (SHARED && li == K) { wt[K] = sel[t * SW + 2u * K]; }
#endif
#if ROUTE_IN
  // moe_gu (ROUTE_OUT) left the token's selection in act's columns RT = K·I + Ish ..
  let rb = min(t, step.n - 1u) * AW + K * I + dims[1].z;
  if (li < K) {
    let e = u32(xf(rb + li));
    let inPart = ROUTED && t < step.n && e >= E0 && e < E0 + EP;
    ex[li] = select(0xffffffffu, (e - E0) * C, inPart);
    wt[li] = select(0.0, xf(rb + K + li), inPart);
    sb[li] = select(0u, (e - E0) * dims[2].y * dims[2].w, inPart);
  }
  if (SHARED && li == K && t < step.n) { wt[K] = xf(rb + 2u * K); }
#endif
  workgroupBarrier();
  var any = SHARED;
  for (var j = 0u; j < K; j++) { any = any || ex[j] != 0xffffffffu; }

  let lane = li % TPR;
  let o = (g.x + g.y * ng.x) * (WG / TPR) + li / TPR;
  let live = o < C && t < step.n;
  let xb = t * (AW / 4u);
  var acc = 0.0;
  if (live && ROUTED) {
    let V = K * Ur;
    let dj = TPR / Ur;
    let dq = TPR % Ur;
    var j = lane / Ur;
    var q = lane % Ur;
    let ob = (o / dims[2].z) * dims[2].w;
    var v = lane;
    for (; v + (UNROLL - 1u) * TPR < V; v += UNROLL * TPR) {
      var wv: array<WUNIT, UNROLL>;
      var jr: array<u32, UNROLL>;
      var qr: array<u32, UNROLL>;
      for (var k = 0u; k < UNROLL; k++) {
        jr[k] = j;
        qr[k] = q;
        let r = ex[j];
        wv[k] = W[select(r + o, 0u, r == 0xffffffffu) * Ur + q];
        q += dq;
        j += dj;
        if (q >= Ur) { q -= Ur; j++; }
      }
      for (var k = 0u; k < UNROLL; k++) {
        let r = ex[jr[k]];
#if ROW_FAST
        let sc = rscale(jr[k], ob, qr[k]);
#else
        let sc = wscale(false, srow_of(false, select(r + o, 0u, r == 0xffffffffu)), qr[k]);
#endif
        acc += wt[jr[k]] * sc * wdot(wv[k], xb + jr[k] * (I / 4u), qr[k] * (EPU / 4u));
      }
    }
    for (; v < V; v += TPR) {
      let r = ex[j];
      let gr = select(r + o, 0u, r == 0xffffffffu);
#if ROW_FAST
      let sc = rscale(j, ob, q);
#else
      let sc = wscale(false, srow_of(false, gr), q);
#endif
      acc += wt[j] * sc * wdot(W[gr * Ur + q], xb + j * (I / 4u), q * (EPU / 4u));
      q += dq;
      j += dj;
      if (q >= Ur) { q -= Ur; j++; }
    }
  }
  if (live && SHARED) {
    let xs = xb + K * (I / 4u);
    var s = 0.0;
    let so = srow_of(true, o);
    for (var q = lane; q < Us; q += TPR) { s += wscale(true, so, q) * wdot(Ws[o * Us + q], xs, q * (EPU / 4u)); }
    acc += wt[K] * s;
  }

#if SG_RED
  acc = lane_sum(li, sg, TPR, array<f32, 1>(acc))[0];
#else
  acc = lane_sum(li, 1u, TPR, array<f32, 1>(acc))[0];
#endif

  if (live && any && lane == 0u) { y[t * C + o] += acc; }
}
