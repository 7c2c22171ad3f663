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
// Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, SPLIT, WV (IN % 8 == 0: W read as vec4<u32>), DB, SM_M, SM_N, SM_K, WM, WN,
// TM, TN, BK, SG; SPLITK (rows n only; the slices are the grid's z).
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> xq: array<vec4<u32>>;    // [R, XR] slots: hi [KH], (lo [KH]), 1/s
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

// y for result matrix (rb, cb), staged at xh[c0 ..] as row-major f32: scale, bias, activation, accumulate; SPLITK:
// the raw sum of this workgroup's slice z of K into plane z of y (a scratch of SK planes; matmul_sgmat_reduce finishes)
fn emit(c0: u32, lane: u32, rb: u32, cb: u32, rows: u32, OUT: u32, XR: u32, z: u32, s: array<f32, MQ>) {
  for (var q = 0u; q < MQ; q++) {
    let e = lane + q * SG;
    let row = rb + e / SM_N;
    let o = cb + e % SM_N;
    if (row < rows && o < OUT) {
      // one code path for both (a binding used by neither branch would drop out of the pipeline's layout)
      var r = s[q] + bitcast<f32>(xh[c0 + e / 4u][e % 4u]);
      if (SPLITK) {
        y[z * step.cap * OUT + row * OUT + o] = r;
      } else {
        r *= bitcast<f32>(xq[row * XR + XR - 1u].x);
        if (HAS_BIAS) { r += bias[o]; }
        r = act(r);
        if (ACCUM) { r += y[row * OUT + o]; }
        y[row * OUT + o] = r;
      }
    }
  }
}

@compute @workgroup_size(NT)
fn matmul_sgmat(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) g: vec3u,
  @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32, @builtin(num_workgroups) ng: vec3u) {
  let IN = dims.x;
  let OUT = dims.y;
  let XR = dims.z;
  let KH = dims.w;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let row0 = g.y * BM;
  if (row0 >= rows) { return; }
  let col0 = g.x * BN;
  let m0 = (sg % WM) * TM * SM_M;   // this subgroup's block inside the tile
  let n0 = (sg / WM) * TN * SM_N;
  // the slots this thread copies: rows tr + q·RS of the tile, slot tc of each K tile row
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
