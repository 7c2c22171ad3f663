// matmul_gemv_multi: sibling projections of one input in one decode GEMV, with the RMSNorm that feeds them in its
// prologue: for parts p < NP (NP ≤ 3), y_p[r, o] (+)= act_p(Σ_i n[r, i]·W_p[o, i]) where n is plane XP_p of x (planes of
// step.cap rows) when !NORM, else n[r, i] = x[r, i]·gn[i]·rsqrt(mean_i x[r, i]² + eps) (the RMSNorm: each
// workgroup first sums the squares of its block's rows; gn scales the W elements in the tile, once for all rows, and
// the rsqrt the sums in the epilogue).
// Geometry, loads, register tile, reductions and defines as matmul_gemv_vec (WG, RB, CB, CV2, CV4, E, TS, UNROLL, VEC, SG_RED,
// SGS, ACT, ACCUM, ROWS_K, W_F32, W_F16): a lane group owns CB consecutive columns of one part (each part starts at a
// whole workgroup, so a workgroup reads one W_p), plus NP, NORM, SWIGLU and ACT0..ACT2 (each part's activation, codes
// as ACT).
// SWIGLU (NP = 2, gate and up of the same OUT, CB ≥ 2): a lane group owns H = CB / 2 outputs o0 .. o0 + H - 1, its
// columns c < H the gate rows (W0) and c ≥ H the up rows (W1) of them; sums are laid out gate half then up half, so
// after the reduction each gate sum's up sum sits in the same slot of the lane across stride 1 (or in the lane itself
// when TS = 0), and the group writes y0[r, o] = silu(g)·u (as silu_mul computes it); y1 is not written.
// Bindings: step uniform; x [R, IN] f32; gn [IN] f32 (dummy if !NORM); W0..W2 [OUT_p, IN] packed (dummy past NP);
// y0..y2 [R, OUT_p] f32 (dummy past NP); dims: (IN, U, TPR, eps bits), (OUT_0, OUT_1, OUT_2, 0),
// (first workgroup of part 1, of part 2, 0, 0), (plane of x read by part 0, 1, 2, 0).
// Accumulates in f32. Reference: the unfused rms_norm then one matmul per part (matmul_gemv_multi.ref.ts).
#include "common.wgsl"
#include "matmul_gemv_common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<XUNIT>;        // [R, IN] (as IN / 4 vec4f when VEC)
@group(0) @binding(2) var<storage, read> gn: array<XUNIT>;       // [IN]
@group(0) @binding(3) var<storage, read> W0: array<WUNIT>;       // [OUT_0, U]
@group(0) @binding(4) var<storage, read> W1: array<WUNIT>;
@group(0) @binding(5) var<storage, read> W2: array<WUNIT>;
@group(0) @binding(6) var<storage, read_write> y0: array<f32>;   // [R, OUT_0]
@group(0) @binding(7) var<storage, read_write> y1: array<f32>;
@group(0) @binding(8) var<storage, read_write> y2: array<f32>;
@group(0) @binding(9) var<uniform> dims: array<vec4u, 4>;

const H = max(CB / 2u, 1u);  // SWIGLU: outputs per lane group

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

// where column c's sum of batch row r sits
fn vi(r: u32, c: u32) -> u32 {
  if (SWIGLU) { return (c / H) * (N / 2u) + r * H + c % H; }
  return r * CB + c;
}

// column c's part: the gate|up half under SWIGLU, else the group's part pc
fn colpart(pc: u32, c: u32) -> u32 {
  if (SWIGLU) { return c / H; }
  return pc;
}

// unit i of the W binding of column c's part (pc: the group's part, a constant at every call)
fn wunit(pc: u32, c: u32, i: u32) -> WUNIT { return wload(colpart(pc, c), i); }

#if NORM
// Σ_i x[r, i]² of the block's rows r (clamped as the loads are), summed over the workgroup: every thread gets them
fn sumsq(li: u32, xg: vec4u, U: u32, sg: u32) -> array<f32, RB> {
  var q: array<f32, RB>;
  for (var u = li; u < U; u += WG) {
    for (var r = 0u; r < RB; r++) {
      let xv = xvals(xg.x + min(xg.y + r, xg.z) * xg.w, u);
      for (var e = 0u; e < E; e++) { q[r] = fma(xv[e], xv[e], q[r]); }
    }
  }
#if SG_RED
  for (var r = 0u; r < RB; r++) { q[r] = subgroupAdd(q[r]); }
  if (li % sg == 0u) { for (var r = 0u; r < RB; r++) { red[(li / sg) * RB + r] = q[r]; } }
  workgroupBarrier();
  for (var r = 0u; r < RB; r++) {
    var v = 0.0;
    for (var j = 0u; j < WG / sg; j++) { v += red[j * RB + r]; }
    q[r] = v;
  }
#else
  for (var r = 0u; r < RB; r++) { red[li * RC + r] = q[r]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { for (var r = 0u; r < RB; r++) { red[li * RC + r] += red[(li + s) * RC + r]; } }
    workgroupBarrier();
  }
  for (var r = 0u; r < RB; r++) { q[r] = red[r]; }
#endif
  workgroupBarrier();   // red is the reduction's next
  return q;
}
#endif

@compute @workgroup_size(WG)
fn matmul_gemv_multi(
#if SG_RED
  @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u, @builtin(subgroup_size) sg: u32) {
#else
  @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
#if !SG_RED
  let sg = 1u;           // unused: the reductions go through workgroup memory
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
  if (!SWIGLU && NP > 1u && wg >= dims[2].x) { p = 1u; first = dims[2].x; }
  if (!SWIGLU && NP > 2u && wg >= dims[2].y) { p = 2u; first = dims[2].y; }
  var o0 = ((wg - first) * (WG / TPR) + sub) * CB;
  if (SWIGLU) { o0 = (wg * (WG / TPR) + sub) * H; }
  let OUT = dims[1][p];
  let r0 = g.z * RB;
#if VEC
  let xs = IN / 4u;      // x row stride in vec4f
#else
  let xs = IN;
#endif
  // x rows past the step's last are clamped to it: their sums are computed and never written
  let xg = vec4u(dims[3][p] * step.cap * xs, r0, rows - 1u, xs);   // row r of the block: x[xg.x + min(xg.y + r, xg.z) · xg.w]
  var ss: array<f32, RB>;        // Σ x² per row (NORM)
#if !NORM
  _ = gn[0];                     // the binding stays in the layout
#endif
#if NORM
  ss = sumsq(li, xg, U, sg);
#endif
  var av: array<CV, RB>;
  if (o0 < OUT) {
    // column c's W row (rows past OUT clamped to the last: computed, never written)
    var wb: array<u32, CB>;
    for (var c = 0u; c < CB; c++) {
      var oc = o0 + c;
      if (SWIGLU) { oc = o0 + c % H; }
      wb[c] = min(oc, OUT - 1u) * U;
    }
    // one call per part with the part a constant, so that each load's binding is known and a step's loads issue together
    if (SWIGLU || NP == 1u || p == 0u) { accum(0u, &av, wb, xg, lane, TPR, U); }
    else if (NP == 2u || p == 1u) { accum(1u, &av, wb, xg, lane, TPR, U); }
    else { accum(2u, &av, wb, xg, lane, TPR, U); }
  }

  // the sums flat at vi(r, c)
  var acc: array<f32, N>;
  for (var r = 0u; r < RB; r++) { for (var c = 0u; c < CB; c++) { acc[vi(r, c)] = col(av[r], c); } }

  let lb = reduce(&acc, li, lane, sub, TPR, sg);

  // lanes of one low-bit class hold the same sums: of those, class member m writes slots i ≡ m (mod TPR >> TS)
  let f = voff(lb);
  let mates = TPR >> TS;
  for (var i = 0u; i < M; i++) {
    let j = f + i;
    if (SWIGLU) {
      // the up sum of gate sum j (< N / 2) is sum j + N / 2: slot i across stride 1, or slot i + N / 2 here
#if SG_RED
      var up: f32;
      if (TS > 0u) { up = subgroupShuffleXor(acc[i], 1u); } else { up = acc[(i + N / 2u) % N]; }
#else
      let up = acc[(i + N / 2u) % N];
#endif
      let r = j / H;
      let row = r0 + r;
      let o = o0 + j % H;
      if (j < N / 2u && (lane >> TS) == i % mates && row < rows && o < OUT) {
        var gs = acc[i];
        var us = up;
        if (NORM) { let k = inverseSqrt(ss[r] / f32(IN) + eps); gs *= k; us *= k; }
        y0[row * OUT + o] = gs * sigmoid(gs) * us;
      }
    } else {
      let r = j / CB;
      let row = r0 + r;
      let o = o0 + j % CB;
      if ((lane >> TS) == i % mates && row < rows && o < OUT) {
        var s = acc[i];
        if (NORM) { s *= inverseSqrt(ss[r] / f32(IN) + eps); }
        var v = part_act(p, s);
        if (ACCUM) { v += yload(p, row * OUT + o); }
        ystore(p, row * OUT + o, v);
      }
    }
  }
}
