// The body of matmul_fp8_gemv_vec.wgsl, _conv.wgsl, _seg.wgsl and _gate.wgsl (`#include "matmul_fp8_gemv_core.wgsl"`
// after their bindings): the doc of matmul_fp8_gemv_vec.wgsl. Exactly one of PARTS2 (vec: one or two parts), CONV,
// SEG, GATE is set by the wrapper's launch; it selects the bindings the body uses, the epilogue and the entry name.

fn xin(xb: u32, q: u32) -> vec4f { return x[xb + q]; }

// input quad i of the GEMV: x, or (GATE) x ⊙ xg
fn xv(i: u32) -> vec4f {
#if GATE
  return x[i] * xg[i];
#else
  return x[i];
#endif
}

#include "moe_unit.wgsl"

const QPU = EPU / 4u;

#if XS
// XS: the RB input rows (x, x ⊙ xg with GATE, n = x·gn with NORM before its rsqrt) staged once per workgroup
var<workgroup> xs: array<vec4f, RB * XQ>;
#endif

// input quad q of batch row r (xr: the rows' first quads in x)
fn xrow(xr: array<u32, RB>, r: u32, q: u32) -> vec4f {
#if XS
  return xs[r * XQ + q];
#else
  return xv(xr[r] + q);
#endif
}

// the activation of code a (ACT in matmul.ref.ts, as act.wgsl)
fn act_code(v: f32, a: u32) -> f32 {
  if (a == 1u) { return tanh_stable(v); }
  if (a == 2u) { return sigmoid(v); }
  if (a == 3u) { let r = max(v, 0.0); return r * r; }
  if (a == 4u) { return -0.6065306597126334 * sigmoid(v); }
  return v;
}


fn ld(p1: bool, i: u32) -> WUNIT {
#if PARTS2
  if (p1) { return W1[i]; }
#endif
  return W0[i];
}

// the first scale of row g (its scale row × SC): computed once per lane, outside the unit loop
fn srow_of(p1: bool, g: u32) -> u32 {
  let fq = select(dims[2], dims[3], p1);
  return ((g / fq.x) * fq.y + (g % fq.x) / fq.z) * fq.w;
}

// the block scale of unit u of the row whose first scale is at sr (× FP8_UNSCALE)
fn wscale(p1: bool, sr: u32, u: u32) -> f32 {
#if COL_POW2
  let i = sr + (u >> select(dims[4].x, dims[4].y, p1));   // units per scale block a power of two: its log2
#else
  let i = sr + (u * EPU) / select(dims[4].x, dims[4].y, p1);
#endif
#if PARTS2
  if (p1) { return S1[i] * FP8_UNSCALE; }
#endif
  return S0[i] * FP8_UNSCALE;
}

#if CONV
// output column o < CC of the single token (row) of its sequence is also the newest input of channel o's causal
// conv: cy[row, o] = act(Σ_j taps[o, j]·(history, v)_j) (taps in vb after the IN norm weights, order as
// short_conv.wgsl), and the history shifts by one, v last. One row per sequence: no other lane touches the channel.
fn conv_out(row: u32, o: u32, v: f32) {
  let CC = dims[4].z;
  let W = dims[4].w;
  let Hn = W - 1u;
  let base = cursor(seq_of(row)).slot * Hn * CC + o;
  let tb = dims[0].x + o * W;
  var s = 0.0;
  var prev = 0.0;
  for (var j = 0u; j < Hn; j++) {
    let h = cst[base + j * CC];
    s = fma(vb[tb + j], h, s);
    if (j > 0u) { cst[base + (j - 1u) * CC] = h; }
  }
  s = fma(vb[tb + Hn], v, s);
  cst[base + (Hn - 1u) * CC] = v;
  if (CONV_SILU) { s = s * sigmoid(s); }
  cy[row * CC + o] = s;
}
#endif

// the unit's quads (2⁻⁸ × e4m3; NORM: times the norm weight's quads u·QPU …, once for all rows)
fn quads(w: WUNIT, u: u32) -> array<vec4f, QPU> {
  var q: array<vec4f, QPU>;
#if VEC
  q[0] = f8quad(w.x);
  q[1] = f8quad(w.y);
  q[2] = f8quad(w.z);
  q[3] = f8quad(w.w);
#else
  q[0] = f8quad(w);
#endif
  if (NORM && !XS) {
    for (var j = 0u; j < QPU; j++) {
      let i = 4u * (u * QPU + j);
      q[j] *= vec4f(vb[i], vb[i + 1u], vb[i + 2u], vb[i + 3u]);
    }
  }
  return q;
}

#if NORM
// NORM: rsqrt(mean x[row]² + eps) of each of the RB rows, summed by the whole workgroup (every thread a strided share of
// the row, then lane_sum of moe_unit.wgsl over all WG lanes); from uniform control flow (barriers inside).
fn norm_scales(li: u32, sg: u32, xr: array<u32, RB>) -> array<f32, RB> {
  let IN = dims[0].x;
  var ss: array<f32, WSR>;   // (the first RB used: lane_sum's width)
  for (var r = 0u; r < RB; r++) {
    for (var q = li; q < IN / 4u; q += WG) {
      let v = xv(xr[r] + q);
      ss[r] += dot(v, v);
#if XS
      xs[r * XQ + q] = v * vec4f(vb[4u * q], vb[4u * q + 1u], vb[4u * q + 2u], vb[4u * q + 3u]);
#endif
    }
  }
#if XS
  workgroupBarrier();   // xs published
#endif
  ss = lane_sum(li, sg, WG, ss);
  var rs: array<f32, RB>;
  for (var r = 0u; r < RB; r++) { rs[r] = inverseSqrt(ss[r] / f32(IN) + bitcast<f32>(dims[0].w)); }
  return rs;
}
#endif

// acc[r·OR + c] += Ŵ unit u of the lane group's output c (loaded as w[c], its row's first scale at sr[c]) · the
// matching input quads of batch row r, every row (each input quad read once for the OR outputs)
fn add_unit(acc: ptr<function, array<f32, RB * OR>>, p1: bool, sr: array<u32, OR>, xr: array<u32, RB>, w: array<WUNIT, OR>, u: u32) {
  var s: array<f32, OR>;
  var qs: array<array<vec4f, QPU>, OR>;
  for (var c = 0u; c < OR; c++) { s[c] = wscale(p1, sr[c], u); qs[c] = quads(w[c], u); }
  for (var r = 0u; r < RB; r++) {
    var d: array<f32, OR>;
    for (var c = 0u; c < OR; c++) { d[c] = 0.0; }   // (explicitly: a loop-local var is not re-zeroed every iteration everywhere)
    for (var j = 0u; j < QPU; j++) {
      let xq = xrow(xr, r, u * QPU + j);
      for (var c = 0u; c < OR; c++) { d[c] += dot(qs[c][j], xq); }
    }
    for (var c = 0u; c < OR; c++) { (*acc)[r * OR + c] += s[c] * d[c]; }
  }
}

@compute @workgroup_size(WG)
#if CONV
#if SG_RED
fn matmul_fp8_gemv_conv(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_fp8_gemv_conv(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  _ = &cst;
  _ = &cy;
#endif
#if SEG
#if SG_RED
fn matmul_fp8_gemv_seg(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_fp8_gemv_seg(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  _ = &y1;
  _ = &y2;
  _ = &y3;
#endif
#if GATE
#if SG_RED
fn matmul_fp8_gemv_gate(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_fp8_gemv_gate(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  _ = &xg;
#endif
#if PARTS2
#if SG_RED
fn matmul_fp8_gemv_vec(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_fp8_gemv_vec(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  _ = &W1;
  _ = &S1;
  _ = &y1;
#endif
  _ = &vb;
  _ = &W0;
  _ = &S0;
  let IN = dims[0].x;
  let U = dims[0].y;
  let TPR = dims[0].z;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let wgi = g.x + g.y * ng.x;
  let p1 = NP > 1u && wgi >= dims[1].z;
  var lw = wgi;
  var OUT = dims[1].x;
  if (p1) { lw = wgi - dims[1].z; OUT = dims[1].y; }
  let lane = li % TPR;
  // OR outputs per lane group: o … o + OR − 1 (past OUT: loads clamped to the last row, nothing written)
  let o = (lw * (WG / TPR) + li / TPR) * OR;
  let r0 = g.z * RB;
  // rows past the step's last are clamped to it: their sums are computed and never written
  var xr: array<u32, RB>;
  for (var r = 0u; r < RB; r++) { xr[r] = min(r0 + r, rows - 1u) * (IN / 4u); }
  var acc: array<f32, RB * OR>;
  var base: array<u32, OR>;
  for (var c = 0u; c < OR; c++) { base[c] = min(o + c, OUT - 1u) * U; }
  var wv: array<array<WUNIT, OR>, UNROLL>;
  // NORM / XS: the first loads go out before the prologue the whole workgroup shares
  let pre = (NORM || XS) && o < OUT && lane + (UNROLL - 1u) * TPR < U;
  if (pre) {
    for (var k = 0u; k < UNROLL; k++) { for (var c = 0u; c < OR; c++) { wv[k][c] = ld(p1, base[c] + lane + k * TPR); } }
  }
  var rs: array<f32, RB>;
#if NORM
#if SG_RED
  rs = norm_scales(li, sg, xr);
#else
  rs = norm_scales(li, 1u, xr);
#endif
#else
#if XS
  for (var r = 0u; r < RB; r++) {
    for (var q = li; q < XQ; q += WG) { xs[r * XQ + q] = xv(xr[r] + q); }
  }
  workgroupBarrier();
#endif
#endif
  if (o < OUT) {
    var sr: array<u32, OR>;
    for (var c = 0u; c < OR; c++) { sr[c] = srow_of(p1, min(o + c, OUT - 1u)); }
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      if (!pre || u != lane) {
        // all loads in flight first
        for (var k = 0u; k < UNROLL; k++) { for (var c = 0u; c < OR; c++) { wv[k][c] = ld(p1, base[c] + u + k * TPR); } }
      }
      for (var k = 0u; k < UNROLL; k++) { add_unit(&acc, p1, sr, xr, wv[k], u + k * TPR); }
    }
    for (; u < U; u += TPR) {
      var w1: array<WUNIT, OR>;
      for (var c = 0u; c < OR; c++) { w1[c] = ld(p1, base[c] + u); }
      add_unit(&acc, p1, sr, xr, w1, u);
    }
  }

#if SG_RED
  acc = lane_sum(li, sg, TPR, acc);
#else
  acc = lane_sum(li, 1u, TPR, acc);
#endif

  // every lane of the group now holds its sums: lane j writes sums j, j + TPR, … (sum r·OR + c: batch row r, output o + c)
  for (var c = 0u; c < OR; c++) {
    let oc = o + c;
    if (oc < OUT) {
      var hb = 0.0;
      if (HAS_BIAS) { hb = vb[oc]; }
      for (var r = 0u; r < RB; r++) {
        let row = r0 + r;
        if ((r * OR + c) % TPR == lane && row < rows) {
          var v = acc[r * OR + c];
          if (NORM) { v *= rs[r]; }
  #if CONV
          y0[row * OUT + oc] = v;
          if (oc < dims[4].z) { conv_out(row, oc, v); }
  #endif
  #if SEG
          // rows [0, s1) → y0, [s1, s2) → y1, [s2, s3) → y2, [s3, OUT) → y3 (s = dims[1].y, dims[4].z, dims[4].w)
          let s1 = dims[1].y;
          let s2 = dims[4].z;
          let s3 = dims[4].w;
          if (oc < s1) { y0[row * s1 + oc] = act_code(v, ACT0); }
          else if (oc < s2) { y1[row * (s2 - s1) + oc - s1] = act_code(v, ACT1); }
          else if (oc < s3) { y2[row * (s3 - s2) + oc - s2] = act_code(v, ACT2); }
          else { y3[row * (OUT - s3) + oc - s3] = act_code(v, ACT3); }
  #endif
  #if GATE
          v = act_code(v + hb, ACT0);
          if (ACCUM) { v += y0[row * OUT + oc]; }
          y0[row * OUT + oc] = v;
  #endif
  #if PARTS2
          if (p1) {
            v = act_code(v + hb, ACT1);
            if (ACCUM) { v += y1[row * OUT + oc]; }
            y1[row * OUT + oc] = v;
          } else {
            v = act_code(v + hb, ACT0);
            if (ACCUM) { v += y0[row * OUT + oc]; }
            y0[row * OUT + oc] = v;
          }
  #endif
        }
      }
    }
}
}
