// matmul_sgmat: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) on subgroup matrices (tensor cores): f16 weights,
// f16 activations, f32 accumulation. SPLIT (f32-grade, the default): x = hi + lo·2^−LO_SHIFT, hi and lo f16,
// y = W·hi + 2^−LO_SHIFT·W·lo (two products); else one product of f16(x). CPU reference: matmul_f16.ref.ts.
// Bindings: as matmul_gemm, W packed f16 pairs. Tiles: a workgroup of WM×WN subgroups (SG lanes each) owns a
// BM×BN block of y, each subgroup TM×TN matrices of SM_M×SM_N (one adapter config, f16 × f16 → f32, depth SM_K);
// every A fragment is reused across the subgroup's TN B fragments and every B fragment across its TM A fragments.
// K tiles of BK staged in workgroup memory as vec4<u32> (8 f16 a slot; x row-major [BM][BK], W [BN][BK] read as Wᵀ
// column-major), rows padded by one slot (PAD) so a fragment's 8-row phases fall in distinct banks. Each thread
// stages whole slots: 8 consecutive x values (converted to hi / lo once, at staging) and 4 W words. The next K tile
// is fetched into registers while the current one is multiplied (two barriers a tile). The epilogue reuses xh's
// memory for one f32 result matrix per subgroup.
// Dispatch: (ceil(OUT/BN), ceil(R/BM)) workgroups of WM·WN·SG threads.
// Defines: ACT, HAS_BIAS, ACCUM, ROWS_K, SPLIT, LO_SHIFT, SM_M, SM_N, SM_K, WM, WN, TM, TN, BK, SG; ONESG (one
// subgroup per workgroup). Matrix loads and stores need subgroup-uniform offsets: with several subgroups the
// subgroup comes from @builtin(subgroup_id) (Tint rejects an offset computed from local_invocation_index,
// "'subgroupMatrixStore' requires argument 1 to be uniform", even with the subgroup_uniformity diagnostic off).
// Loads and stores use Dawn's current form, subgroupMatrixLoad<T, row_major | col_major>(p, offset, stride), offset
// and stride counted in p's array elements (vec4<u32> slots here); the bool-argument form is deprecated.
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
const KS = BK / 8u;          // vec4<u32> slots in a K tile row
const KP = KS + 1u;          // padded row stride in slots
const XS = BM * KS;          // x slots a K tile
const WS = BN * KS;          // W slots a K tile
const LX = (XS + NT - 1u) / NT;   // x slots per thread
const LW = (WS + NT - 1u) / NT;   // W slots per thread
var<workgroup> xh: array<vec4<u32>, BM * KP>;
#if SPLIT
var<workgroup> xl: array<vec4<u32>, BM * KP>;
#endif
var<workgroup> ws: array<vec4<u32>, BN * KP>;

// f16 element i of W (any alignment)
fn wAt(i: u32) -> u32 { return (W[i / 2u] >> (16u * (i % 2u))) & 0xffffu; }

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
  // the next K tile in registers: 8 x values and 4 W words a slot
  var px: array<array<f32, 8>, LX>;
  var pw: array<vec4<u32>, LW>;
  let vec = IN % 8u == 0u;
  for (var k0 = 0u; k0 < IN + BK; k0 += BK) {
    if (k0 > 0u) {
      // stage the fetched tile (k0 − BK): x split into hi / lo once here
      for (var q = 0u; q < LX; q++) {
        let e = t + q * NT;
        if (e < XS) {
          var h: array<f16, 8>;
          var l: array<f16, 8>;
          for (var c = 0u; c < 8u; c++) {
            let v = px[q][c];
            // hi: v rounded to f16's 11 significant bits in integers (no f32(f16(v)) round trip, which compilers may fold away)
            let h32 = bitcast<f32>((bitcast<u32>(v) + 0x1000u) & 0xffffe000u);
            h[c] = f16(h32);
            l[c] = f16((v - h32) * f32(1u << LO_SHIFT));
          }
          let s = (e / KS) * KP + e % KS;
          xh[s] = vec4<u32>(bitcast<u32>(vec2<f16>(h[0], h[1])), bitcast<u32>(vec2<f16>(h[2], h[3])),
            bitcast<u32>(vec2<f16>(h[4], h[5])), bitcast<u32>(vec2<f16>(h[6], h[7])));
#if SPLIT
          xl[s] = vec4<u32>(bitcast<u32>(vec2<f16>(l[0], l[1])), bitcast<u32>(vec2<f16>(l[2], l[3])),
            bitcast<u32>(vec2<f16>(l[4], l[5])), bitcast<u32>(vec2<f16>(l[6], l[7])));
#endif
        }
      }
      for (var q = 0u; q < LW; q++) {
        let e = t + q * NT;
        if (e < WS) { ws[(e / KS) * KP + e % KS] = pw[q]; }
      }
      workgroupBarrier();
    }
    if (k0 < IN) {
      // fetch tile k0 (zeros past the edges)
      for (var q = 0u; q < LX; q++) {
        let e = t + q * NT;
        let r = row0 + e / KS;
        let k = k0 + 8u * (e % KS);
        if (e < XS && r < rows) {
          let b = r * IN + k;
          if (k + 8u <= IN) {
            for (var c = 0u; c < 8u; c++) { px[q][c] = x[b + c]; }
          } else {
            for (var c = 0u; c < 8u; c++) { px[q][c] = select(0.0, x[min(b + c, r * IN + IN - 1u)], k + c < IN); }
          }
        } else {
          for (var c = 0u; c < 8u; c++) { px[q][c] = 0.0; }
        }
      }
      for (var q = 0u; q < LW; q++) {
        let e = t + q * NT;
        let n = col0 + e / KS;
        let k = k0 + 8u * (e % KS);
        var v = vec4<u32>(0u);
        if (e < WS && n < OUT) {
          let b = n * IN + k;
          if (vec && k + 8u <= IN) {
            v = vec4<u32>(W[b / 2u], W[b / 2u + 1u], W[b / 2u + 2u], W[b / 2u + 3u]);
          } else {
            var h: array<u32, 8>;
            for (var c = 0u; c < 8u; c++) { h[c] = select(0u, wAt(min(b + c, n * IN + IN - 1u)), k + c < IN); }
            v = vec4<u32>(h[0] | (h[1] << 16u), h[2] | (h[3] << 16u), h[4] | (h[5] << 16u), h[6] | (h[7] << 16u));
          }
        }
        pw[q] = v;
      }
    }
    if (k0 > 0u) {
      for (var kk = 0u; kk < BK; kk += SM_K) {
        var b: array<subgroup_matrix_right<f16, SM_N, SM_K>, TN>;
        for (var j = 0u; j < TN; j++) {
          b[j] = subgroupMatrixLoad<subgroup_matrix_right<f16, SM_N, SM_K>, col_major>(&ws, (n0 + j * SM_N) * KP + kk / 8u, KP);
        }
        for (var i = 0u; i < TM; i++) {
          let a = subgroupMatrixLoad<subgroup_matrix_left<f16, SM_K, SM_M>, row_major>(&xh, (m0 + i * SM_M) * KP + kk / 8u, KP);
#if SPLIT
          let al = subgroupMatrixLoad<subgroup_matrix_left<f16, SM_K, SM_M>, row_major>(&xl, (m0 + i * SM_M) * KP + kk / 8u, KP);
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
  }
  // epilogue: each result matrix goes through this subgroup's slice of xh (MN f32 = MN/4 slots; the lo product after the hi one)
  let c0 = sg * (MN / 4u);
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) {
      var v: array<f32, MN / SG>;
      subgroupMatrixStore<row_major>(&xh, c0, acc[i * TN + j], SM_N / 4u);
      workgroupBarrier();
      for (var q = 0u; q < MN / SG; q++) { let e = lane + q * SG; v[q] = bitcast<f32>(xh[c0 + e / 4u][e % 4u]); }
#if SPLIT
      workgroupBarrier();
      subgroupMatrixStore<row_major>(&xh, c0, accl[i * TN + j], SM_N / 4u);
      workgroupBarrier();
      for (var q = 0u; q < MN / SG; q++) { let e = lane + q * SG; v[q] += bitcast<f32>(xh[c0 + e / 4u][e % 4u]) / f32(1u << LO_SHIFT); }
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
