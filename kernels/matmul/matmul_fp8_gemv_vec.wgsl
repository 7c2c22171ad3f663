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
// units in flight (loads first), decodes each unit once for all rows (f16 trick of moe_unit.wgsl); the sums reduce
// over the lane group with lane_sum (moe_unit.wgsl: SG_RED subgroups, else workgroup memory). NORM: the lanes issue
// their first loads, then the whole workgroup sums each row's x² once (norm_scales), and the sums are scaled by
// rsqrt(mean x² + eps) after the reduction. XS: the workgroup first stages its RB input rows in workgroup memory (x,
// x ⊙ xg with GATE, x·gn with NORM; XQ = IN / 4 quads a row), which every lane group then reads.
// OR (FLA_FP8_ROWS): each lane group computes OR consecutive outputs, every input quad it reads used for all of them.
// Defines: WG, RB, OR, WSR (= RB · OR), UNROLL, VEC, SG_RED, SGS, NP, NORM, XS, XQ, HAS_BIAS, ACCUM, ROWS_K, ACT0, ACT1,
// COL_POW2. f32 accumulate.
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

#include "matmul_fp8_gemv_core.wgsl"
