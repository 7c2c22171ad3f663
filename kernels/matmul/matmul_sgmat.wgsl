// matmul_sgmat: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) on subgroup matrices (tensor cores): f16 weights,
// f16 activations, f32 accumulation. SPLIT (f32-grade, the default): x = hi + lo·2^−LO_SHIFT, hi and lo f16,
// y = W·hi + 2^−LO_SHIFT·W·lo (two products); else one product of f16(x). CPU reference: matmul_f16.ref.ts.
// Bindings: as matmul_gemm, W packed f16 pairs. Tiles: a workgroup of WM×WN subgroups (SG lanes each) owns a
// BM×BN block of y, each subgroup TM×TN matrices of SM_M×SM_N (one adapter config, f16 × f16 → f32, depth SM_K);
// K tiles of BK staged as f16 in workgroup memory (x row-major [BM][BK], W [BN][BK], read as Wᵀ column-major).
// Dispatch: (ceil(OUT/BN), ceil(R/BM)) workgroups of WM·WN·SG threads.
// Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, SPLIT, LO_SHIFT, SM_M, SM_N, SM_K, WM, WN, TM, TN, BK, SG; ONESG (one
// subgroup per workgroup). Matrix loads and stores need subgroup-uniform offsets: with several subgroups the
// subgroup comes from @builtin(subgroup_id) (Tint rejects an offset computed from local_invocation_index,
// "'subgroupMatrixStore' requires argument 1 to be uniform", even with the subgroup_uniformity diagnostic off).
#include "common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [R, IN]
@group(0) @binding(2) var<storage, read> W: array<u32>;          // [OUT, IN] f16 pairs
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // IN, OUT

const BM = WM * TM * SM_M;
const BN = WN * TN * SM_N;
const NT = WM * WN * SG;
const MN = SM_M * SM_N;
var<workgroup> xh: array<f16, BM * BK>;
#if SPLIT
var<workgroup> xl: array<f16, BM * BK>;
#endif
var<workgroup> ws: array<f16, BN * BK>;
var<workgroup> cs: array<f32, WM * WN * MN>;   // one result matrix per subgroup, for the epilogue

@compute @workgroup_size(NT)
#if ONESG
fn matmul_sgmat(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) g: vec3u) {
#else
fn matmul_sgmat(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) g: vec3u,
  @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32) {
#endif
  let IN = dims.x;
  let OUT = dims.y;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let row0 = g.y * BM;
  if (row0 >= rows) { return; }
  let col0 = g.x * BN;
#if ONESG
  let sg = 0u;
  let lane = t;
#else
  let sg = sgid;
  let lane = sgl;
#endif
  let m0 = (sg % WM) * TM * SM_M;   // this subgroup's block inside the tile
  let n0 = (sg / WM) * TN * SM_N;
  var acc: array<subgroup_matrix_result<f32, SM_N, SM_M>, TM * TN>;
#if SPLIT
  var accl: array<subgroup_matrix_result<f32, SM_N, SM_M>, TM * TN>;
#endif
  for (var k0 = 0u; k0 < IN; k0 += BK) {
    for (var e = t; e < BM * BK; e += NT) {
      let r = e / BK;
      let c = e % BK;
      var v = 0.0;
      if (row0 + r < rows && k0 + c < IN) { v = x[(row0 + r) * IN + k0 + c]; }
      // hi: v rounded to f16's 11 significant bits in integers (no f32(f16(v)) round trip, which compilers may fold away)
      let h32 = bitcast<f32>((bitcast<u32>(v) + 0x1000u) & 0xffffe000u);
      let hi = f16(h32);
      xh[e] = hi;
#if SPLIT
      xl[e] = f16((v - h32) * f32(1u << LO_SHIFT));
#endif
    }
    for (var e = t; e < BN * BK / 2u; e += NT) {
      let n = e / (BK / 2u);
      let k = k0 + 2u * (e % (BK / 2u));
      var v = vec2<f16>(0.0h);
      if (col0 + n < OUT && k < IN) { v = bitcast<vec2<f16>>(W[((col0 + n) * IN + k) / 2u]); }
      ws[2u * e] = v.x;
      ws[2u * e + 1u] = v.y;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk += SM_K) {
      var b: array<subgroup_matrix_right<f16, SM_N, SM_K>, TN>;
      for (var j = 0u; j < TN; j++) {
        b[j] = subgroupMatrixLoad<subgroup_matrix_right<f16, SM_N, SM_K>>(&ws, (n0 + j * SM_N) * BK + kk, true, BK);
      }
      for (var i = 0u; i < TM; i++) {
        let a = subgroupMatrixLoad<subgroup_matrix_left<f16, SM_K, SM_M>>(&xh, (m0 + i * SM_M) * BK + kk, false, BK);
#if SPLIT
        let al = subgroupMatrixLoad<subgroup_matrix_left<f16, SM_K, SM_M>>(&xl, (m0 + i * SM_M) * BK + kk, false, BK);
#endif
        for (var j = 0u; j < TN; j++) {
          acc[i * TN + j] = subgroupMatrixMultiplyAccumulate(a, b[j], acc[i * TN + j]);
#if SPLIT
          accl[i * TN + j] = subgroupMatrixMultiplyAccumulate(al, b[j], accl[i * TN + j]);
#endif
        }
      }
    }
    workgroupBarrier();
  }
  // epilogue: each result matrix goes through this subgroup's slice of cs (the lo product after the hi one)
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) {
      var v: array<f32, MN / SG>;
      subgroupMatrixStore(&cs, sg * MN, acc[i * TN + j], false, SM_N);
      workgroupBarrier();
      for (var q = 0u; q < MN / SG; q++) { v[q] = cs[sg * MN + lane + q * SG]; }
#if SPLIT
      workgroupBarrier();
      subgroupMatrixStore(&cs, sg * MN, accl[i * TN + j], false, SM_N);
      workgroupBarrier();
      for (var q = 0u; q < MN / SG; q++) { v[q] += cs[sg * MN + lane + q * SG] / f32(1u << LO_SHIFT); }
#endif
      workgroupBarrier();
      for (var q = 0u; q < MN / SG; q++) {
        let e = lane + q * SG;
        let row = row0 + m0 + i * SM_M + e / SM_N;
        let o = col0 + n0 + j * SM_N + e % SM_N;
        if (row < rows && o < OUT) {
          var r = v[q];
          if (HAS_BIAS) { r += bias[o]; }
          r = act(r);
          if (ACCUM) { r += y[row * OUT + o]; }
          y[row * OUT + o] = r;
        }
      }
    }
  }
}
