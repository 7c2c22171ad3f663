// matmul_fp8_gemv_vec: decode GEMV over F8_E4M3 weights with block scales at the bandwidth limit, for one matrix or two
// sibling ones (NP = 2: one dispatch, part 1's workgroups after part 0's), optionally behind the RMSNorm that feeds them:
//   y_p[r, o] (+)= act_p(Σ_i n[r, i]·Ŵ_p[o, i] + bias[o]),  n = x, or (NORM) n[r, i] = x[r, i]·gn[i]·rsqrt(mean x[r]² + eps)
// for 1..RB rows r held in registers (each weight read once for all of them). Ŵ_p = e4m3(W_p)·S_p[srow(o), ⌊i / BC⌋].
// Bindings: step; x [R, IN] f32; vb f32: gn [IN] (NORM) or bias [OUT0] (HAS_BIAS, NP 1) or a placeholder;
// W0/W1 load units (moe_unit.wgsl: VEC 16 bytes = 16 fp8, else 4); S0/S1 their scales; y0/y1 [R, OUT_p] f32;
// dims (IN, U units per row, TPR, eps bits), (OUT0, OUT1, workgroups of part 0, 0), (RP, SRP, BR, SC) of W0 and
// of W1, (BC0, BC1, 0, 0) (COL_POW2: log2 of each BC / EPU instead).
// Dispatch: workgroups of WG threads, TPR lanes (a power of two) per output row (split-K over its U units),
// WG / TPR rows per workgroup, a 2-D grid over both parts' row blocks, z over blocks of RB rows. Each lane keeps UNROLL
// units in flight (loads first), decodes each unit once for all rows (f16 trick of moe_unit.wgsl), and with NORM also
// sums x² over the row it streams; both sums reduce like matmul_gemv_vec (SG_RED subgroups, else workgroup memory).
// Defines: WG, RB, UNROLL, VEC, SG_RED, SGS, NP, NORM, HAS_BIAS, ACCUM, ROWS_K, ACT0, ACT1, COL_POW2. f32 accumulate.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> vb: array<f32>;
@group(0) @binding(3) var<storage, read> W0: array<WUNIT>;
@group(0) @binding(4) var<storage, read> S0: array<f32>;
@group(0) @binding(5) var<storage, read> W1: array<WUNIT>;
@group(0) @binding(6) var<storage, read> S1: array<f32>;
@group(0) @binding(7) var<storage, read_write> y0: array<f32>;
@group(0) @binding(8) var<storage, read_write> y1: array<f32>;
@group(0) @binding(9) var<uniform> dims: array<vec4u, 5>;

fn xin(xb: u32, q: u32) -> vec4f { return x[xb + q]; }

#include "moe_unit.wgsl"

const QPU = EPU / 4u;

// the activation of code a (ACT in matmul.ref.ts, as act.wgsl)
fn act_code(v: f32, a: u32) -> f32 {
  if (a == 1u) { return tanh_stable(v); }
  if (a == 2u) { return sigmoid(v); }
  if (a == 3u) { let r = max(v, 0.0); return r * r; }
  if (a == 4u) { return -0.6065306597126334 * sigmoid(v); }
  return v;
}

#if SG_RED
var<workgroup> red: array<f32, (WG / SGS) * RB * 2u>;
#else
var<workgroup> red: array<f32, WG * RB * 2u>;
#endif

fn ld(p1: bool, i: u32) -> WUNIT {
  if (p1) { return W1[i]; }
  return W0[i];
}

fn wscale(p1: bool, g: u32, u: u32) -> f32 {
  let fq = select(dims[2], dims[3], p1);
  let srow = (g / fq.x) * fq.y + (g % fq.x) / fq.z;
#if COL_POW2
  let i = srow * fq.w + (u >> select(dims[4].x, dims[4].y, p1));   // units per scale block a power of two: its log2
#else
  let i = srow * fq.w + (u * EPU) / select(dims[4].x, dims[4].y, p1);
#endif
  if (p1) { return S1[i] * FP8_UNSCALE; }
  return S0[i] * FP8_UNSCALE;
}

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
  if (NORM) {
    for (var j = 0u; j < QPU; j++) {
      let i = 4u * (u * QPU + j);
      q[j] *= vec4f(vb[i], vb[i + 1u], vb[i + 2u], vb[i + 3u]);
    }
  }
  return q;
}

@compute @workgroup_size(WG)
#if SG_RED
fn matmul_fp8_gemv_vec(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_fp8_gemv_vec(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  _ = &vb;
  _ = &W0;
  _ = &W1;
  _ = &S0;
  _ = &S1;
  _ = &y1;
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
  let o = lw * (WG / TPR) + li / TPR;
  let r0 = g.z * RB;
  // rows past the step's last are clamped to it: their sums are computed and never written
  var xr: array<u32, RB>;
  for (var r = 0u; r < RB; r++) { xr[r] = min(r0 + r, rows - 1u) * (IN / 4u); }
  var acc: array<f32, RB>;
  var ss: array<f32, RB>;
  if (o < OUT) {
    if (NORM) {
      for (var q = lane; q < IN / 4u; q += TPR) {
        for (var r = 0u; r < RB; r++) { let v = x[xr[r] + q]; ss[r] += dot(v, v); }
      }
    }
    let base = o * U;
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      var wv: array<WUNIT, UNROLL>;
      for (var k = 0u; k < UNROLL; k++) { wv[k] = ld(p1, base + u + k * TPR); }   // all loads in flight first
      for (var k = 0u; k < UNROLL; k++) {
        let uk = u + k * TPR;
        let s = wscale(p1, o, uk);
        let qs = quads(wv[k], uk);
        for (var r = 0u; r < RB; r++) {
          var d = 0.0;
          for (var j = 0u; j < QPU; j++) { d += dot(qs[j], x[xr[r] + uk * QPU + j]); }
          acc[r] += s * d;
        }
      }
    }
    for (; u < U; u += TPR) {
      let s = wscale(p1, o, u);
      let qs = quads(ld(p1, base + u), u);
      for (var r = 0u; r < RB; r++) {
        var d = 0.0;
        for (var j = 0u; j < QPU; j++) { d += dot(qs[j], x[xr[r] + u * QPU + j]); }
        acc[r] += s * d;
      }
    }
  }

#if SG_RED
  if (TPR < sg) {
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
      for (var r = 0u; r < RB; r++) { acc[r] += subgroupShuffleXor(acc[r], s); ss[r] += subgroupShuffleXor(ss[r], s); }
    }
  } else {
    for (var r = 0u; r < RB; r++) { acc[r] = subgroupAdd(acc[r]); ss[r] = subgroupAdd(ss[r]); }
  }
  if (TPR > sg) {
    let si = li / sg;
    if (li % sg == 0u) { for (var r = 0u; r < RB; r++) { red[(si * RB + r) * 2u] = acc[r]; red[(si * RB + r) * 2u + 1u] = ss[r]; } }
    workgroupBarrier();
    let first = (li / TPR) * (TPR / sg);
    for (var r = 0u; r < RB; r++) {
      var v = 0.0;
      var w = 0.0;
      for (var j = 0u; j < TPR / sg; j++) { v += red[((first + j) * RB + r) * 2u]; w += red[((first + j) * RB + r) * 2u + 1u]; }
      acc[r] = v;
      ss[r] = w;
    }
  }
#else
  for (var r = 0u; r < RB; r++) { red[(li * RB + r) * 2u] = acc[r]; red[(li * RB + r) * 2u + 1u] = ss[r]; }
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var r = 0u; r < RB; r++) {
        red[(li * RB + r) * 2u] += red[((li + s) * RB + r) * 2u];
        red[(li * RB + r) * 2u + 1u] += red[((li + s) * RB + r) * 2u + 1u];
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < RB; r++) { acc[r] = red[((li - lane) * RB + r) * 2u]; ss[r] = red[((li - lane) * RB + r) * 2u + 1u]; }
#endif

  // every lane of the row now holds its sums: lane j writes batch rows j, j + TPR, …
  if (o < OUT) {
    var hb = 0.0;
    if (HAS_BIAS) { hb = vb[o]; }
    for (var r = 0u; r < RB; r++) {
      let row = r0 + r;
      if (r % TPR == lane && row < rows) {
        var v = acc[r];
        if (NORM) { v *= inverseSqrt(ss[r] / f32(IN) + bitcast<f32>(dims[0].w)); }
        if (p1) {
          v = act_code(v + hb, ACT1);
          if (ACCUM) { v += y1[row * OUT + o]; }
          y1[row * OUT + o] = v;
        } else {
          v = act_code(v + hb, ACT0);
          if (ACCUM) { v += y0[row * OUT + o]; }
          y0[row * OUT + o] = v;
        }
      }
    }
  }
}
