// matmul_sgmat: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) on subgroup matrices (tensor cores): f16 weights,
// f16 activations from matmul_sgmat_prep (xq: per row s·x as hi, with SPLIT lo, f16, then 1/s), f32 accumulation.
// SPLIT (f32-grade): acc += W·hi + W·lo in one accumulator; else W·hi alone. y = acc·(1/s). CPU reference:
// matmul_f16.ref.ts. With the split the accumulators restart every FL K tiles (matmul_sgmat.ts, SGMAT_FLUSH_K):
// each goes through this subgroup's slice of xh into f32 sums held by the lanes (MQ values each), because the
// tensor cores truncate when they add into the accumulator and that bias grows with the length of the chain.
// Tiles: a workgroup of WM×WN subgroups (SG lanes each) owns a BM×BN block of y, each subgroup TM×TN result matrices
// of SM_M×SM_N (one adapter config, f16 × f16 → f32, depth SM_K); each B fragment (W) serves the subgroup's TM A
// fragments (hi and lo), each A fragment its TN B fragments. K tiles of BK are staged in workgroup memory as
// vec4<u32> (8 f16 a slot; x row-major [BM][BK], W [BN][BK] read as Wᵀ column-major), rows padded by one slot so a
// fragment's 8-row phases fall in distinct banks. Every thread copies whole slots (16-byte global loads); the next K
// tile is fetched into registers while the current one is multiplied; DB: two workgroup buffers and one barrier a
// K tile (the K loop unrolled twice, so buffer offsets stay constants), else one buffer and two. The epilogue passes
// each result matrix through this subgroup's slice of xh. SPLITK: workgroup z sums only slice z of the K tiles and
// writes it unscaled to plane z of y (then a scratch; matmul_sgmat_reduce adds the planes and finishes).
// The lines `//@ NAME` are filled by matmul_sgmat.ts (sgmatKernel) with straight-line code for the tile: every
// matrix, fragment and prefetch register a named value (no arrays of subgroup matrices to index dynamically).
// Matrix loads and stores need subgroup-uniform offsets: the subgroup comes from @builtin(subgroup_id) (Tint rejects
// one computed from local_invocation_index). Offsets and strides count p's array elements (vec4<u32> slots).
// Dispatch: (ceil(OUT/BN), ceil(R/BM), SK) workgroups of WM·WN·SG threads.
// FUSED (the split with its restarts only): no pre-pass: binding 1 is x itself (f32 [R, IN]; with XV, IN % 4 == 0, read
// as vec4<f32>), split into hi + lo here while its K tile is staged. The scale s is a power of two per row and per
// restart block (FL K tiles, from the block's largest |x|, read first), so each block's sums are scaled by 1/s (isc,
// one f32 a row of the tile) when they enter the f32 sums; SPLITK planes are then scaled already.
// Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, SPLIT, WV (IN % 8 == 0: W read as vec4<u32>), DB, SM_M, SM_N, SM_K, WM, WN,
// TM, TN, BK, SG; SPLITK (rows n only; the slices are the grid's z); FUSED, XV.
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
// binding 1: xq, [R, XR] slots: hi [KH], (lo [KH]), 1/s (array<vec4<u32>>); FUSED: x [R, IN] f32 (vec4<f32> with XV)
//@ xdecl
// W [OUT, IN] f16: with WV as array<vec4<u32>> (IN/8 slots a row), else array<u32> (f16 pairs); one declaration,
// chosen by matmul_sgmat.ts (two under #if would be two @binding(2) to the binding-list check)
//@ wdecl
@group(0) @binding(3) var<storage, read> bias: array<f32>;        // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;     // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                    // IN, OUT, XR, KH (slots a row of xq, of its hi)

const BM = WM * TM * SM_M;
const BN = WN * TN * SM_N;
const NT = WM * WN * SG;
const MN = SM_M * SM_N;
const MQ = MN / SG;          // elements of one result matrix a lane holds in the epilogue (and in the flush sums)
const KS = BK / 8u;          // slots in a K tile row
const KP = KS + 1u;          // padded row stride in slots
const XB = BM * KP;          // one x buffer
const WB = BN * KP;          // one W buffer
const RS = NT / KS;          // rows one pass of the workgroup's threads copies
#if DB
const NBUF = 2u;
#else
const NBUF = 1u;
#endif
var<workgroup> xh: array<vec4<u32>, NBUF * XB>;
#if SPLIT
var<workgroup> xl: array<vec4<u32>, NBUF * XB>;
#endif
var<workgroup> ws: array<vec4<u32>, NBUF * WB>;
#if FUSED
var<workgroup> isc: array<f32, BM>;   // 1/s of each row of the tile for the current restart block
#endif

// W[n, k .. k + 8) as f16, zero from IN on
fn wSlot(n: u32, k: u32, IN: u32) -> vec4<u32> {
#if WV
  if (k >= IN) { return vec4<u32>(0u); }
  return W[(n * IN + k) / 8u];
#else
  var h: array<u32, 8>;
  for (var c = 0u; c < 8u; c++) {
    let i = n * IN + k + c;
    h[c] = select(0u, (W[i / 2u] >> (16u * (i % 2u))) & 0xffffu, k + c < IN);
  }
  return vec4<u32>(h[0] | (h[1] << 16u), h[2] | (h[3] << 16u), h[4] | (h[5] << 16u), h[6] | (h[7] << 16u));
#endif
}

#if FUSED
// x[row, k .. k + 8) (row at element b = row·IN), zero from IN on
fn xSlot(b: u32, k: u32, IN: u32) -> mat2x4<f32> {
#if XV
  var v = mat2x4<f32>();
  if (k < IN) { v[0] = x[(b + k) / 4u]; }
  if (k + 4u < IN) { v[1] = x[(b + k) / 4u + 1u]; }
  return v;
#else
  var h: array<f32, 8>;
  for (var c = 0u; c < 8u; c++) { h[c] = select(0.0, x[b + min(k + c, IN - 1u)], k + c < IN); }
  return mat2x4<f32>(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
#endif
}

fn absMax(v: mat2x4<f32>) -> f32 {
  let a = max(abs(v[0]), abs(v[1]));
  return max(max(a.x, a.y), max(a.z, a.w));
}

// the power of two s that puts m (a row's largest |x| in the block) into [2^13, 2^14), as matmul_sgmat_prep: 1 for 0
fn rowScale(m: f32) -> f32 {
  let eb = (bitcast<u32>(m) >> 23u) & 0xffu;
  var k = 0i;
  if (eb != 0u && eb != 255u) { k = clamp(13i - (i32(eb) - 127i), -100i, 100i); }
  return bitcast<f32>(u32(127i + k) << 23u);
}

// v·s as hi (f16, rounded to 11 bits in integers) and lo = f16(v·s − hi), 8 f16 each: matmul_sgmat_prep's split
fn hi11(v: vec4f) -> vec4f { return bitcast<vec4f>((bitcast<vec4u>(v) + vec4u(0x1000u)) & vec4u(0xffffe000u)); }
fn pack4(v: vec4f) -> vec2<u32> { return vec2<u32>(bitcast<u32>(vec2<f16>(f16(v.x), f16(v.y))), bitcast<u32>(vec2<f16>(f16(v.z), f16(v.w)))); }
fn splitX(v: mat2x4<f32>, s: f32) -> array<vec4<u32>, 2> {
  let a = v[0] * s;
  let b = v[1] * s;
  let ha = hi11(a);
  let hb = hi11(b);
  return array<vec4<u32>, 2>(vec4<u32>(pack4(ha), pack4(hb)), vec4<u32>(pack4(a - ha), pack4(b - hb)));
}
#endif

// y for result matrix (rb, cb), staged at xh[c0 ..] as row-major f32: scale, bias, activation, accumulate; SPLITK:
// the raw sum of this workgroup's slice z of K into plane z of y (a scratch of SK planes; matmul_sgmat_reduce finishes).
// FUSED: s holds scaled sums, the matrix is scaled by its rows' isc (from row lr of the tile), planes are scaled too.
fn emit(c0: u32, lane: u32, rb: u32, lr: u32, cb: u32, rows: u32, OUT: u32, XR: u32, z: u32, s: array<f32, MQ>) {
  for (var q = 0u; q < MQ; q++) {
    let e = lane + q * SG;
    let row = rb + e / SM_N;
    let o = cb + e % SM_N;
    if (row < rows && o < OUT) {
      // one code path for both (a binding used by neither branch would drop out of the pipeline's layout)
#if FUSED
      var r = s[q] + bitcast<f32>(xh[c0 + e / 4u][e % 4u]) * isc[lr + e / SM_N];
#else
      var r = s[q] + bitcast<f32>(xh[c0 + e / 4u][e % 4u]);
#endif
      if (SPLITK) {
        y[z * step.cap * OUT + row * OUT + o] = r;
      } else {
#if !FUSED
        r *= bitcast<f32>(xq[row * XR + XR - 1u].x);
#endif
        if (HAS_BIAS) { r += bias[o]; }
        r = act(r);
        if (ACCUM) { r += y[row * OUT + o]; }
        y[row * OUT + o] = r;
      }
    }
  }
}

@compute @workgroup_size(NT)
fn matmul_sgmat(@builtin(workgroup_id) g: vec3u,
  @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(num_workgroups) ng: vec3u) {
  let IN = dims.x;
  let OUT = dims.y;
  let XR = dims.z;
  let KH = dims.w;   // XR, KH: unused with FUSED
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let row0 = g.y * BM;
  if (row0 >= rows) { return; }
  let col0 = g.x * BN;
  let m0 = (sg % WM) * TM * SM_M;   // this subgroup's block inside the tile
  let n0 = (sg / WM) * TN * SM_N;
  // the slots this thread copies: rows tr + q·RS of the tile, slot tc of each K tile row. Thread t numbered by subgroup
  // and lane (not local_invocation_index: no order of lanes is promised), so the KS threads of a row are lanes t ^ 1, …
  let t = sg * SG + lane;
  let tr = t / KS;
  let tc = t % KS;
  // rows past R (x) or OUT (W) are clamped, not zeroed: they only reach outputs that are not stored
  //@ decl
  // K tiles k_lo .. NK (SPLITK: slice g.z of the grid's ng.z, as many tiles each; a slice past the end sums nothing)
  var NK = (IN + BK - 1u) / BK;
  var klo = 0u;
  if (SPLITK) {
    let per = (NK + ng.z - 1u) / ng.z;
    klo = min(NK, g.z * per);
    NK = min(NK, klo + per);
  }
  var k0 = klo * BK;
  // this subgroup's slice of xh for the result matrices (epilogue, flushes), and this lane's first word there
  let c0 = sg * (MN / 4u);
  let fq = c0 + lane / 4u;
  let fr = lane % 4u;
  //@ fetch
  // K tile kt + b goes through buffer b (DB: the loop body is unrolled over both, so every offset is a constant)
  for (var kt = klo; kt < NK; kt += NBUF) {
    //@ step0
#if DB
    if (kt + 1u < NK) {
      //@ step1
    }
#endif
  }
  workgroupBarrier();
  //@ epilogue
}
