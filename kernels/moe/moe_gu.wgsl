// moe_gu: gate|up of the routed experts and of the shared expert for few tokens (decode) in one launch, SwiGLU fused:
//   routed (ROUTED), assignment a = t·K + j, e = sel[t, j] in this part [E0, E0 + EP):
//     act[t, j·I + i] = silu(h[t]·W[e, i]) · (h[t]·W[e, I + i])                   i < I
//   shared (SHARED), one per token t:
//     act[t, K·I + i] = silu(h[t]·Ws[i]) · (h[t]·Ws[Ish + i])                      i < Ish
// ROUTE (with SG_RED): sel is the router's logits [N, LW = SW] (E = dims[5].z experts, then the shared gate's logit)
// and each workgroup of a routed assignment first selects its token's top-K itself (moe_route_sg.wgsl: the same
// experts in the same order as moe_topk), so no moe_topk dispatch runs before it. ROUTE_OUT (with ROUTE): the token's
// first routed workgroup also writes the selection into act's last 2K + 1 columns (from RT = K·I + Ish: the K experts
// as f32, their K weights, the shared gate σ(logit E)), which moe_down reads instead of routing again.
// NORM: h[t] = RMSNorm(x[t])·gn (eps = bitcast dims[4].w) in the prologue: the whole workgroup sums x[t]² once
// (lane_sum of moe_unit.wgsl over all WG lanes) and the lanes' sums are scaled by rsqrt(mean x² + eps) after the reduction; else h = x.
// XS: the workgroup stages its token's x (times gn with NORM) in workgroup memory first (C × 4 bytes).
// W [EP, 2I, C] is the part's gate|up tensor (per expert I gate rows then I up rows), Ws [2Ish, C] the shared one,
// both of one storage dtype, read in load units (moe_unit.wgsl) with fp8 block scales S / Ss.
// Bindings: step; x = h (or the rows to normalize) [N, C] f32; sel [N, SW] f32 (moe_topk); W, Ws u32 units; act [N, AW] f32
// (AW ≥ K·I + Ish, + 2K + 1 with ROUTE_OUT, a multiple of 4);
// dims: (C, I, K, E0), (EP, SW, Ish, AW), scale layout of W and of Ws (RP, SRP, BR, SC), (BC, BCs, TPR, eps) (COL_POW2: log2 of
// each BC / EPU instead of BC),
// (U, U, 0, 0) = units per row; S, Ss fp8 block scales (placeholders otherwise); gn [C] f32 the norm weight (NORM).
// Dispatch: workgroups of WG threads, TPR lanes (a power of two) per output row i (its gate and its up row, split-K
// over the row's U units), WG / TPR rows per workgroup, a 2-D grid over row blocks of max(I, Ish); z = the N·K routed
// assignments (ROUTED) then the N shared ones (SHARED). Each lane keeps 2·UNROLL units in flight (loads issued
// first). Reduction: SG_RED subgroup shuffles/adds (+ a workgroup pass when TPR > the subgroup), else a
// workgroup-memory tree (as matmul_gemv_vec). Defines: WG, UNROLL, VEC, SG_RED, SGS, ROUTED, SHARED, NORM, WSR (2),
// ROUTE, ROUTE_OUT, XS (XQ = C / 4), W_*, COL_POW2.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;          // h [N, C / 4]
@group(0) @binding(2) var<storage, read> sel: array<f32>;          // [N, SW]
@group(0) @binding(3) var<storage, read> W: array<WUNIT>;          // [EP, 2I, U]
@group(0) @binding(4) var<storage, read> Ws: array<WUNIT>;         // [2Ish, U]
@group(0) @binding(5) var<storage, read_write> act: array<f32>;    // [N, AW]
@group(0) @binding(6) var<uniform> dims: array<vec4u, 6>;
@group(0) @binding(7) var<storage, read> S: array<f32>;
@group(0) @binding(8) var<storage, read> Ss: array<f32>;
@group(0) @binding(9) var<storage, read> gn: array<vec4f>;         // [C / 4] (NORM)

#if XS
// XS: the token's input row (times gn with NORM) staged once per workgroup
var<workgroup> xs: array<vec4f, XQ>;
#endif

fn xin(xb: u32, q: u32) -> vec4f {
#if XS
  return xs[q];
#else
#if NORM
  return x[xb + q] * gn[q];
#else
  return x[xb + q];
#endif
#endif
}

#include "moe_unit.wgsl"

#if ROUTE
fn rt_logit(i: u32) -> f32 { return sel[i]; }
#include "moe_route_sg.wgsl"
#endif


fn ld(sh: bool, i: u32) -> WUNIT {
  if (sh) { return Ws[i]; }
  return W[i];
}

@compute @workgroup_size(WG)
#if SG_RED
fn moe_gu(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32, @builtin(subgroup_invocation_id) sl: u32) {
#else
fn moe_gu(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  _ = &W;
  _ = &Ws;
  _ = &S;
  _ = &Ss;
  _ = &gn;
  let C = dims[0].x;
  let I = dims[0].y;
  let K = dims[0].z;
  let E0 = dims[0].w;
  let EP = dims[1].x;
  let SW = dims[1].y;
  let Ish = dims[1].z;
  let AW = dims[1].w;
  let TPR = dims[4].z;
  let U = dims[5].x;
  var nr = 0u;
  if (ROUTED) { nr = step.n * K; }
  let a = g.z;
  let sh = a >= nr;
  var t = a - nr;
  var rows = Ish;
  var col = K * I;
  var g0 = 0u;
  var ok = SHARED;
  if (!sh) {
    t = a / K;
#if ROUTE
    route(li, sl, sg, t * SW, dims[5].z, K, true);   // (a workgroup-uniform branch)
    let e = rt_e[a % K];
#else
    let e = u32(sel[t * SW + a % K]);
#endif
    ok = e >= E0 && e < E0 + EP;
    rows = I;
    col = (a % K) * I;
    g0 = (e - E0) * 2u * I;
#if ROUTE_OUT
    // the token's first routed workgroup hands the selection to moe_down: act[t, RT ..] = experts, weights, shared gate
    if (a % K == 0u && g.x == 0u && g.y == 0u && t < step.n) {
      let rb = t * AW + K * I + Ish;
      if (li < K) { act[rb + li] = f32(rt_e[li]); act[rb + K + li] = rt_w[li]; }
      if (li == K) { act[rb + 2u * K] = 1.0 / (1.0 + exp(-sel[t * SW + dims[5].z])); }
    }
#endif
  }
  let lane = li % TPR;
  let i = (g.x + g.y * ng.x) * (WG / TPR) + li / TPR;
  let live = ok && t < step.n && i < rows;
  let xb = min(t, step.n - 1u) * (C / 4u);
  var rs = 1.0;
  // one pass over the token's row: Σx² (NORM) and the staged row (XS)
  var ss = array<f32, 2>(0.0, 0.0);
  if (NORM || XS) {
    for (var q = li; q < C / 4u; q += WG) {
      let v = x[xb + q];
      ss[0] += dot(v, v);
#if XS
#if NORM
      xs[q] = v * gn[q];
#else
      xs[q] = v;
#endif
#endif
    }
  }
#if XS
  workgroupBarrier();   // xs published
#endif
#if NORM
  // rsqrt(mean x[t]² + eps), summed once by the whole workgroup
#if SG_RED
  ss = lane_sum(li, sg, WG, ss);
#else
  ss = lane_sum(li, 1u, WG, ss);
#endif
  rs = inverseSqrt(ss[0] / f32(C) + bitcast<f32>(dims[4].w));
#endif
  var acc = vec2f(0.0);      // gate sum, up sum
  if (live) {
    let gg = g0 + i;
    let gu = gg + rows;
    let sg0 = srow_of(sh, gg);
    let su0 = srow_of(sh, gu);
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      var wg: array<WUNIT, UNROLL>;
      var wu: array<WUNIT, UNROLL>;
      for (var k = 0u; k < UNROLL; k++) { wg[k] = ld(sh, gg * U + u + k * TPR); wu[k] = ld(sh, gu * U + u + k * TPR); }
      for (var k = 0u; k < UNROLL; k++) {
        let uk = u + k * TPR;
        let lq = uk * (EPU / 4u);
        acc += vec2f(wdot(wg[k], xb, lq) * wscale(sh, sg0, uk), wdot(wu[k], xb, lq) * wscale(sh, su0, uk));
      }
    }
    for (; u < U; u += TPR) {
      let w0 = ld(sh, gg * U + u);
      let w1 = ld(sh, gu * U + u);
      let lq = u * (EPU / 4u);
      acc += vec2f(wdot(w0, xb, lq) * wscale(sh, sg0, u), wdot(w1, xb, lq) * wscale(sh, su0, u));
    }
  }

  var gu2 = array<f32, 2>(acc.x, acc.y);
#if SG_RED
  gu2 = lane_sum(li, sg, TPR, gu2);
#else
  gu2 = lane_sum(li, 1u, TPR, gu2);
#endif
  acc = vec2f(gu2[0], gu2[1]);

  let gv = acc.x * rs;
  let uv = acc.y * rs;
  if (live && lane == 0u) { act[t * AW + col + i] = gv / (1.0 + exp(-gv)) * uv; }
}
