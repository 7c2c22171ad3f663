// matmul_sgmv: the decode GEMV on subgroup matrices (tensor cores), for a few rows (≤ 16) and f16 weights:
// y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]); MULTI (matmul_multi's sibling projections): parts p < NP of one
// input, y_p[r, o] (+)= act_p(Σ_i n[r, i]·W_p[o, i]), n = x, or with NORM n[r, i] = x[r, i]·gn[i]·rsqrt(mean_i x[r, i]² + eps),
// and with SWIGLU (parts gate, up of one width) y0[r, o] = silu(g)·u (as silu_mul), y1 not written.
// Products transposed: the weights are the left matrices (SM_M output rows × SM_K of IN, loaded straight from the
// storage buffer, row-major), the rows the right ones (SM_K × SM_N): the workgroup's RP rows (8 or 16, rows past R
// repeat the last) split f32-grade into hi and lo halves, f16 each, as 2·RP virtual columns (hi of rows 0 .. RP − 1,
// then their lo), NF = 2·RP / SM_N right matrices; a row's result is its hi column plus its lo column (in f32).
// Work: a workgroup owns MT output tiles of SM_M rows (OT consecutive tiles of one part; SWIGLU: OT gate tiles and the
// OT up tiles of the same rows) and all of K. Its NSG subgroups split K: in chunk c subgroup s takes the KSG elements
// from (c·NSG + s)·KSG, stages its own slice of x (each lane LPR-th of a row's slots: no other subgroup reads it), splits
// it with a scale s per row and slice (a power of two putting the slice's largest |x| into [2^13, 2^14): the split's
// halves stay normal f16), multiplies, and adds each accumulator into f32 sums (its column's 1/s applied: a restart
// every KSG of K, so the tensor cores' truncating adds never chain longer). The next chunk's W matrices and x slots
// are loaded while the current one is staged and multiplied (PD 2: W two chunks ahead). At the end the subgroups' sums are added in workgroup memory and
// the epilogue runs per (tile row, row). CPU reference: matmul_f16.ref.ts (split, chunk KSG, blockScale).
// Rows past OUT: the last tile of a part starts at OUT − SM_M (needs OUT ≥ SM_M) and writes only its rows past the
// previous tile. IN % 16 == 0 (whole W matrices; K past IN: the last matrix again, times a zero x).
// Matrix loads and stores need subgroup-uniform offsets: from the workgroup, @builtin(subgroup_id) and loop counters.
// SPLITK (single, rows n): the grid's z splits the chunks into slices; slice z writes its raw sums to plane z of y
// (then a scratch [SK, cap, OUT]; matmul_sgmat_reduce adds the planes and runs the epilogue).
// Dispatch: grid(Σ_p workgroups of part p) × SK over z, workgroups of NSG·SG threads.
// WS (benchmarking, FLA_SGMV_WSTAGE=1): W read with 16-byte loads instead, staged per subgroup in workgroup memory as x.
// Defines: SM_M, SM_N, SM_K (config), SG, NSG, KSG, RP, MT, OT, WS, PD, MULTI, NP, NORM, SWIGLU, ACT (single), ACT0..ACT2
// (MULTI), HAS_BIAS (single), ACCUM, ROWS_K. The lines `//@ NAME` are filled by matmul_sgmv.ts (straight-line code).
#include "common.wgsl"
#include "act.wgsl"

// bindings (MULTI: step, x, gn, W0..W2, y0..y2, dims; else step, x, W, bias, y, dims); dims: (IN, eps bits, 0, 0),
// (OUT_0, OUT_1, OUT_2, 0), (first workgroup of part 1, of part 2, 0, 0)
//@ bindings

const MN = SM_M * SM_N;
const MQ = MN / SG;          // elements of one result matrix a lane holds
const NT = NSG * SG;
const LPR = SG / RP;         // lanes staging one row
const KS = KSG / 8u;         // slots (8 f16) of a subgroup's slice of a row
const KP = KS + 1u;          // padded stride of a staged row
const XQ = KS / LPR;         // slots a lane stages a chunk
const NF = 2u * RP / SM_N;   // right matrices: hi columns, then lo columns
const XSG = 2u * RP * KP;    // slots of one subgroup's stage
const RSG = MT * NF * MN;    // f32 of one subgroup's result matrices
var<workgroup> xs: array<vec4<u32>, NSG * XSG>;
var<workgroup> res: array<f32, NSG * RSG>;
var<workgroup> isc: array<f32, 2u * NSG * RP>;   // 1/s of each (subgroup, row), by chunk parity
var<workgroup> ssw: array<f32, NSG * RP>;        // MULTI: each (subgroup, row)'s Σ x² (NORM)

// Σ over the subgroups of tile matrix mt's row m (of SM_M), row rr of the block: its hi column plus its lo column
fn total(mt: u32, rr: u32, m: u32) -> f32 {
  var v = 0.0;
  let h = rr;
  let l = RP + rr;
  for (var s = 0u; s < NSG; s++) {
    let b = s * RSG + mt * NF * MN + m * SM_N;
    v += res[b + (h / SM_N) * MN + h % SM_N] + res[b + (l / SM_N) * MN + l % SM_N];
  }
  return v;
}

fn ssum(rr: u32) -> f32 {
  var v = 0.0;
  for (var s = 0u; s < NSG; s++) { v += ssw[s * RP + rr]; }
  return v;
}

// the power of two s that puts m (a slice's largest |x|) into [2^13, 2^14), as matmul_sgmat_prep: 1 for 0
fn rowScale(m: f32) -> f32 {
  let eb = (bitcast<u32>(m) >> 23u) & 0xffu;
  var k = 0i;
  if (eb != 0u && eb != 255u) { k = clamp(13i - (i32(eb) - 127i), -100i, 100i); }
  return bitcast<f32>(u32(127i + k) << 23u);
}

// v·s as hi (f16, rounded to 11 bits in integers) and lo = f16(v·s − hi), 8 f16 each: matmul_sgmat's split
fn hi11(v: vec4f) -> vec4f { return bitcast<vec4f>((bitcast<vec4u>(v) + vec4u(0x1000u)) & vec4u(0xffffe000u)); }
fn pack4(v: vec4f) -> vec2<u32> { return vec2<u32>(bitcast<u32>(vec2<f16>(f16(v.x), f16(v.y))), bitcast<u32>(vec2<f16>(f16(v.z), f16(v.w)))); }
fn splitX(v: mat2x4<f32>, s: f32) -> array<vec4<u32>, 2> {
  let a = v[0] * s;
  let b = v[1] * s;
  let ha = hi11(a);
  let hb = hi11(b);
  return array<vec4<u32>, 2>(vec4<u32>(pack4(ha), pack4(hb)), vec4<u32>(pack4(a - ha), pack4(b - hb)));
}

fn absMax(v: mat2x4<f32>) -> f32 {
  let a = max(abs(v[0]), abs(v[1]));
  return max(max(a.x, a.y), max(a.z, a.w));
}

// x[row, k .. k + 8) (b = row·IN / 4), zero from IN on
fn xSlot(b: u32, k: u32, IN: u32) -> mat2x4<f32> {
  var v = mat2x4<f32>();
  if (k < IN) { v[0] = x[b + k / 4u]; v[1] = x[b + k / 4u + 1u]; }
  return v;
}

// the first K element of subgroup sg's slice in chunk c, IN (nothing: the loads return zeros) from chunk NCH on
fn kof(c: u32, NCH: u32, sg: u32, IN: u32) -> u32 {
  if (c >= NCH) { return IN; }
  return (c * NSG + sg) * KSG;
}

//@ helpers

@compute @workgroup_size(NT)
fn matmul_sgmv(@builtin(workgroup_id) g3: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let IN = dims[0].x;
  let U = IN / 8u;                      // slots of a W row
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let row0 = 0u;                        // one block: R ≤ RP (the grid's z is SPLITK's slices)
  if (rows == 0u) { return; }
  let wg = g3.x + g3.y * ng.x;
  // this workgroup's part p (MULTI, !SWIGLU: parts start at whole workgroups) and its first output row o0 there
  var p = 0u;
  var first = 0u;
  if (MULTI && !SWIGLU) {
    if (NP > 2u && wg >= dims[2].y) { p = 2u; first = dims[2].y; } else if (NP > 1u && wg >= dims[2].x) { p = 1u; first = dims[2].x; }
  }
  let OUT = dims[1][p];
  let o0 = (wg - first) * OT * SM_M;
  // the lane's staging: row r of the block, slots j, j + LPR, … of its subgroup's slice
  let r = lane / LPR;
  let j = lane % LPR;
  let xb = min(row0 + r, rows - 1u) * (IN / 4u);
  let sb = sg * XSG;
  let tid = sg * SG + lane;
  //@ decl
  let KC = NSG * KSG;
  var NCH = (IN + KC - 1u) / KC;
  // chunks clo .. NCH (SPLITK: slice g3.z of ng.z, as many chunks each; a slice past the end sums nothing)
  var clo = 0u;
  if (SPLITK) {
    let per = (NCH + ng.z - 1u) / ng.z;
    clo = min(NCH, g3.z * per);
    NCH = min(NCH, clo + per);
  }
  var k0 = kof(clo, NCH, sg, IN);
  //@ wfirst
  for (var c = clo; c < NCH; c++) {
    k0 = (c * NSG + sg) * KSG;
    let kn = kof(c + 1u, NCH, sg, IN);
    let ib = (c % 2u) * NSG * RP + sg * RP;
    //@ wnext
    //@ stage
    workgroupBarrier();
    //@ mma
    //@ flush
    workgroupBarrier();
    //@ sums
    //@ wshift
  }
  workgroupBarrier();
  //@ final
  workgroupBarrier();
  //@ epilogue
}
