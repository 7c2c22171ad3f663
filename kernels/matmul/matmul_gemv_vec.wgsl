// matmul_gemv_vec: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) for 1..RB rows r (decode), at the bandwidth
// limit on W: each weight is read once for all RB rows, which are held in registers.
// Bindings: step uniform; x [R, IN] f32; W [OUT, IN] packed (WDT); bias [OUT] f32 (dummy if !HAS_BIAS); y [R, OUT] f32.
// Runtime dims uniform: IN, OUT, U (load units per W row), TPR (lanes per output row: a power of two ≤ WG).
// A load unit is 16 bytes of W (vec4<u32>: 8 bf16/f16 or 4 f32) when VEC (IN % 8 == 0, or IN % 4 == 0 for f32),
// else one u32 word (2 bf16/f16 or 1 f32); x is read as vec4<f32> when VEC, else as f32.
// Dispatch: workgroups of WG threads; TPR lanes (a power of two) cooperate on one output row (split-K over IN),
// WG / TPR rows per workgroup, grid over x (and y past 65535) of ceil(OUT / (WG / TPR)); z over blocks of RB rows.
// Lanes stride over the row's units, UNROLL units in flight per lane (loads issued before the FMAs; UNROLL · RB ≤ 16
// keeps the shader small).
// Reduction over the TPR lanes: SG_RED (lanes of a 1-D workgroup laid out consecutively in subgroups of the runtime
// size sg ≥ SGS, the adapter's smallest): subgroupShuffleXor butterflies when TPR < sg, subgroupAdd when TPR == sg,
// plus a workgroup-memory pass over the TPR / sg subgroups when TPR > sg; else (portable) a workgroup-memory tree.
// Defines: WG, RB, UNROLL, VEC, SG_RED, SGS, ACT, HAS_BIAS, ACCUM, ROWS_K, W_F32, W_F16 (WDT 0: no wpair()). Accumulates in f32.
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
#if VEC
alias XUNIT = vec4f;
alias WUNIT = vec4u;
#else
alias XUNIT = f32;
alias WUNIT = u32;
#endif
@group(0) @binding(1) var<storage, read> x: array<XUNIT>;        // [R, IN] (as IN / 4 vec4f when VEC)
@group(0) @binding(2) var<storage, read> W: array<WUNIT>;        // [OUT, U]
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // IN, OUT, U, TPR

#if SG_RED
// one partial sum per (subgroup, batch row) when a row spans several subgroups
var<workgroup> red: array<f32, (WG / SGS) * RB>;
#else
var<workgroup> red: array<f32, WG * RB>;
#endif

// Unit u of W (as loaded) times the same unit of x row `xr` (the row's first x index in x's element type).
#if VEC
fn dot_unit(w: vec4u, xr: u32, u: u32) -> f32 {
#if W_F32
  return dot(bitcast<vec4f>(w), x[xr + u]);
#else
  let a = x[xr + 2u * u];
  let b = x[xr + 2u * u + 1u];
#if W_F16
  let w0 = unpack2x16float(w.x); let w1 = unpack2x16float(w.y);
  let w2 = unpack2x16float(w.z); let w3 = unpack2x16float(w.w);
  return dot(vec4f(w0, w1), a) + dot(vec4f(w2, w3), b);
#else
  let lo = bitcast<vec4f>(w << vec4u(16u));            // elements 0, 2, 4, 6
  let hi = bitcast<vec4f>(w & vec4u(0xffff0000u));     // elements 1, 3, 5, 7
  return dot(vec4f(lo.x, hi.x, lo.y, hi.y), a) + dot(vec4f(lo.z, hi.z, lo.w, hi.w), b);
#endif
#endif
}
#else
fn dot_unit(w: u32, xr: u32, u: u32) -> f32 {
#if W_F32
  return bitcast<f32>(w) * x[xr + u];
#else
#if W_F16
  let p = unpack2x16float(w);
#else
  let p = vec2f(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
#endif
  return p.x * x[xr + 2u * u] + p.y * x[xr + 2u * u + 1u];
#endif
}
#endif

@compute @workgroup_size(WG)
#if SG_RED
fn matmul_gemv_vec(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_gemv_vec(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  let IN = dims.x;
  let OUT = dims.y;
  let U = dims.z;
  let TPR = dims.w;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let lane = li % TPR;
  let sub = li / TPR;
  let o = (g.x + g.y * ng.x) * (WG / TPR) + sub;
  let r0 = g.z * RB;
#if VEC
  let xs = IN / 4u;      // x row stride in vec4f
#else
  let xs = IN;
#endif
  // x rows past the step's last are clamped to it: their sums are computed and never written
  var xr: array<u32, RB>;
  for (var r = 0u; r < RB; r++) { xr[r] = min(r0 + r, rows - 1u) * xs; }
  var acc: array<f32, RB>;
  if (o < OUT) {
    let base = o * U;
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      var wv: array<WUNIT, UNROLL>;
      for (var k = 0u; k < UNROLL; k++) { wv[k] = W[base + u + k * TPR]; }   // all loads in flight first
      for (var k = 0u; k < UNROLL; k++) {
        for (var r = 0u; r < RB; r++) { acc[r] += dot_unit(wv[k], xr[r], u + k * TPR); }
      }
    }
    for (; u < U; u += TPR) {
      let w0 = W[base + u];
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
    if (li % sg == 0u) { for (var r = 0u; r < RB; r++) { red[si * RB + r] = acc[r]; } }
    workgroupBarrier();
    let first = sub * (TPR / sg);
    for (var r = 0u; r < RB; r++) {
      var v = 0.0;
      for (var j = 0u; j < TPR / sg; j++) { v += red[(first + j) * RB + r]; }
      acc[r] = v;
    }
  }
#else
  for (var r = 0u; r < RB; r++) { red[li * RB + r] = acc[r]; }
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var r = 0u; r < RB; r++) { red[li * RB + r] += red[(li + s) * RB + r]; }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < RB; r++) { acc[r] = red[(li - lane) * RB + r]; }
#endif

  // every lane of the row now holds its sums: lane j writes batch rows j, j + TPR, …
  if (o < OUT) {
    var hb = 0.0;
    if (HAS_BIAS) { hb = bias[o]; }
    for (var r = 0u; r < RB; r++) {
      let row = r0 + r;
      if (r % TPR == lane && row < rows) {
        var v = act(acc[r] + hb);
        if (ACCUM) { v += y[row * OUT + o]; }
        y[row * OUT + o] = v;
      }
    }
  }
}
