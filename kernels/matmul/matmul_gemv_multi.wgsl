// matmul_gemv_multi: sibling projections of one input in one decode GEMV, with the RMSNorm that feeds them in its
// prologue: for parts p < NP (NP ≤ 3), y_p[r, o] (+)= act_p(Σ_i n[r, i]·W_p[o, i]) where n is plane XP_p of x (planes of
// step.cap rows) when !NORM, else n[r, i] = x[r, i]·gn[i]·rsqrt(mean_i x[r, i]² + eps) (the RMSNorm, its sum of
// squares taken from the same x loads).
// SWIGLU (NP = 2, gate and up of the same OUT): the gate and up rows of one output o are neighbours in a workgroup
// (sub-rows 2j, 2j + 1), and the gate row writes y0[r, o] = silu(g)·u (as silu_mul computes it) with the up row's
// sum handed over through workgroup memory (PAIRS = (WG / TPR) / 2 pairs per workgroup); y1 is not written.
// Bindings: step uniform; x [R, IN] f32; gn [IN] f32 (dummy if !NORM); W0..W2 [OUT_p, IN] packed (dummy past NP);
// y0..y2 [R, OUT_p] f32 (dummy past NP); dims: (IN, U, TPR, eps bits), (OUT_0, OUT_1, OUT_2, 0),
// (first workgroup of part 1, of part 2, 0, 0), (plane of x read by part 0, 1, 2, 0).
// Geometry, loads, reductions and defines as matmul_gemv_vec (WG, RB, UNROLL, VEC, SG_RED, SGS, ACT, ACCUM, ROWS_K,
// W_F32, W_F16), plus NP, NORM, SWIGLU, PAIRS and ACT0..ACT2 (each part's activation, codes as ACT); each part starts at a whole
// workgroup, so a workgroup reads one W_p.
// Accumulates in f32. Reference: the unfused rms_norm then one matmul per part (matmul_gemv_multi.ref.ts).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
#if VEC
alias XUNIT = vec4f;
alias WUNIT = vec4u;
#else
alias XUNIT = f32;
alias WUNIT = u32;
#endif
@group(0) @binding(1) var<storage, read> x: array<XUNIT>;        // [R, IN] (as IN / 4 vec4f when VEC)
@group(0) @binding(2) var<storage, read> gn: array<XUNIT>;       // [IN]
@group(0) @binding(3) var<storage, read> W0: array<WUNIT>;       // [OUT_0, U]
@group(0) @binding(4) var<storage, read> W1: array<WUNIT>;
@group(0) @binding(5) var<storage, read> W2: array<WUNIT>;
@group(0) @binding(6) var<storage, read_write> y0: array<f32>;   // [R, OUT_0]
@group(0) @binding(7) var<storage, read_write> y1: array<f32>;
@group(0) @binding(8) var<storage, read_write> y2: array<f32>;
@group(0) @binding(9) var<uniform> dims: array<vec4u, 4>;

#if SG_RED
var<workgroup> red: array<f32, (WG / SGS) * RB * 2>;
#else
var<workgroup> red: array<f32, WG * RB * 2>;
#endif
var<workgroup> upv: array<f32, PAIRS * RB>;      // SWIGLU: each pair's up sums, per batch row (PAIRS 1 otherwise)

fn wload(p: u32, i: u32) -> WUNIT {
  if (p == 0u) { return W0[i]; }
  if (p == 1u) { return W1[i]; }
  return W2[i];
}

fn yload(p: u32, i: u32) -> f32 {
  if (p == 0u) { return y0[i]; }
  if (p == 1u) { return y1[i]; }
  return y2[i];
}

// act.wgsl's activations by code, for the part's own code
fn act_code(code: u32, v: f32) -> f32 {
  if (code == 1u) { return tanh_stable(v); }
  if (code == 2u) { return sigmoid(v); }
  if (code == 3u) { let r = max(v, 0.0); return r * r; }
  if (code == 4u) { return -0.6065306597126334 * sigmoid(v); }   // RWKV7 log-decay −e^{−0.5}·σ(v)
  return v;
}

fn part_act(p: u32, v: f32) -> f32 {
  if (p == 0u) { return act_code(ACT0, v); }
  if (p == 1u) { return act_code(ACT1, v); }
  return act_code(ACT2, v);
}

fn ystore(p: u32, i: u32, v: f32) {
  if (p == 0u) { y0[i] = v; } else if (p == 1u) { y1[i] = v; } else { y2[i] = v; }
}

// Unit u of W times the same unit of x row `xr` (times gn when NORM): (Σ w·x·gn, Σ x²).
#if VEC
fn dot_unit(w: vec4u, xr: u32, u: u32) -> vec2f {
#if W_F32
  let a = x[xr + u];
  var ga = a;
  if (NORM) { ga = a * gn[u]; }
  return vec2f(dot(bitcast<vec4f>(w), ga), dot(a, a));
#else
  let a = x[xr + 2u * u];
  let b = x[xr + 2u * u + 1u];
  var ga = a;
  var gb = b;
  if (NORM) { ga = a * gn[2u * u]; gb = b * gn[2u * u + 1u]; }
#if W_F16
  let w0 = unpack2x16float(w.x); let w1 = unpack2x16float(w.y);
  let w2 = unpack2x16float(w.z); let w3 = unpack2x16float(w.w);
  return vec2f(dot(vec4f(w0, w1), ga) + dot(vec4f(w2, w3), gb), dot(a, a) + dot(b, b));
#else
  let lo = bitcast<vec4f>(w << vec4u(16u));            // elements 0, 2, 4, 6
  let hi = bitcast<vec4f>(w & vec4u(0xffff0000u));     // elements 1, 3, 5, 7
  return vec2f(dot(vec4f(lo.x, hi.x, lo.y, hi.y), ga) + dot(vec4f(lo.z, hi.z, lo.w, hi.w), gb), dot(a, a) + dot(b, b));
#endif
#endif
}
#else
fn dot_unit(w: u32, xr: u32, u: u32) -> vec2f {
#if W_F32
  let a = x[xr + u];
  var ga = a;
  if (NORM) { ga = a * gn[u]; }
  return vec2f(bitcast<f32>(w) * ga, a * a);
#else
#if W_F16
  let p = unpack2x16float(w);
#else
  let p = vec2f(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
#endif
  let a = vec2f(x[xr + 2u * u], x[xr + 2u * u + 1u]);
  var ga = a;
  if (NORM) { ga = a * vec2f(gn[2u * u], gn[2u * u + 1u]); }
  return vec2f(dot(p, ga), dot(a, a));
#endif
}
#endif

@compute @workgroup_size(WG)
#if SG_RED
fn matmul_gemv_multi(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_gemv_multi(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  let IN = dims[0].x;
  let U = dims[0].y;
  let TPR = dims[0].z;
  let eps = bitcast<f32>(dims[0].w);
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let lane = li % TPR;
  let sub = li / TPR;
  let wg = g.x + g.y * ng.x;
  var p = 0u;
  var first = 0u;
  if (NP > 1u && wg >= dims[2].x) { p = 1u; first = dims[2].x; }
  if (NP > 2u && wg >= dims[2].y) { p = 2u; first = dims[2].y; }
  var o = (wg - first) * (WG / TPR) + sub;
  if (SWIGLU) { p = sub % 2u; o = (wg * (WG / TPR) + sub) / 2u; }   // gate and up of output o side by side
  let OUT = dims[1][p];
  let r0 = g.z * RB;
#if VEC
  let xs = IN / 4u;      // x row stride in vec4f
#else
  let xs = IN;
#endif
  // x rows past the step's last are clamped to it: their sums are computed and never written
  var xr: array<u32, RB>;
  let xplane = dims[3][p] * step.cap * xs;
  for (var r = 0u; r < RB; r++) { xr[r] = xplane + min(r0 + r, rows - 1u) * xs; }
  var acc: array<vec2f, RB>;     // (Σ w·x·gn, Σ x²) per row
  if (o < OUT) {
    let base = o * U;
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      var wv: array<WUNIT, UNROLL>;
      for (var k = 0u; k < UNROLL; k++) { wv[k] = wload(p, base + u + k * TPR); }   // all loads in flight first
      for (var k = 0u; k < UNROLL; k++) {
        for (var r = 0u; r < RB; r++) { acc[r] += dot_unit(wv[k], xr[r], u + k * TPR); }
      }
    }
    for (; u < U; u += TPR) {
      let w0 = wload(p, base + u);
      for (var r = 0u; r < RB; r++) { acc[r] += dot_unit(w0, xr[r], u); }
    }
  }

#if SG_RED
  if (TPR < sg) {
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
      for (var r = 0u; r < RB; r++) { acc[r] += subgroupShuffleXor(acc[r], s); }
    }
  } else {
    for (var r = 0u; r < RB; r++) { acc[r] = subgroupAdd(acc[r]); }
  }
  if (TPR > sg) {
    // sum the TPR / sg subgroups of each output row through workgroup memory
    let si = li / sg;
    if (li % sg == 0u) { for (var r = 0u; r < RB; r++) { red[2u * (si * RB + r)] = acc[r].x; red[2u * (si * RB + r) + 1u] = acc[r].y; } }
    workgroupBarrier();
    let f0 = sub * (TPR / sg);
    for (var r = 0u; r < RB; r++) {
      var v = vec2f(0.0);
      for (var j = 0u; j < TPR / sg; j++) { v += vec2f(red[2u * ((f0 + j) * RB + r)], red[2u * ((f0 + j) * RB + r) + 1u]); }
      acc[r] = v;
    }
  }
#else
  for (var r = 0u; r < RB; r++) { red[2u * (li * RB + r)] = acc[r].x; red[2u * (li * RB + r) + 1u] = acc[r].y; }
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var r = 0u; r < RB; r++) {
        red[2u * (li * RB + r)] += red[2u * ((li + s) * RB + r)];
        red[2u * (li * RB + r) + 1u] += red[2u * ((li + s) * RB + r) + 1u];
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < RB; r++) { acc[r] = vec2f(red[2u * ((li - lane) * RB + r)], red[2u * ((li - lane) * RB + r) + 1u]); }
#endif

  // every lane of the row now holds its sums: lane j writes batch rows j, j + TPR, …
  if (SWIGLU) {
    let pi = sub / 2u;
    if (p == 1u && o < OUT) {
      for (var r = 0u; r < RB; r++) {
        if (r % TPR == lane) {
          var s = acc[r].x;
          if (NORM) { s *= inverseSqrt(acc[r].y / f32(IN) + eps); }
          upv[pi * RB + r] = s;
        }
      }
    }
    workgroupBarrier();
    if (p == 0u && o < OUT) {
      for (var r = 0u; r < RB; r++) {
        let row = r0 + r;
        if (r % TPR == lane && row < rows) {
          var s = acc[r].x;
          if (NORM) { s *= inverseSqrt(acc[r].y / f32(IN) + eps); }
          y0[row * OUT + o] = s * sigmoid(s) * upv[pi * RB + r];
        }
      }
    }
  } else if (o < OUT) {
    for (var r = 0u; r < RB; r++) {
      let row = r0 + r;
      if (r % TPR == lane && row < rows) {
        var s = acc[r].x;
        if (NORM) { s *= inverseSqrt(acc[r].y / f32(IN) + eps); }
        var v = part_act(p, s);
        if (ACCUM) { v += yload(p, row * OUT + o); }
        ystore(p, row * OUT + o, v);
      }
    }
  }
}
