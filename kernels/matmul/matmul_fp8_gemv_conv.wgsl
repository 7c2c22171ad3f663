// matmul_fp8_gemv_conv: matmul_fp8_gemv_vec.wgsl (NP 1, NORM as there; no bias, activation or accumulation) for a
// decode step (one token per sequence) whose output's first CC columns also feed a causal depthwise conv of kernel W
// (Qwen3-Next's in_proj → conv1d over q|k|v, spec-deltanet-attention-qwen3next.md §1.4):
//   y0[r, o] = n[r]·Ŵ[o]                                              every o < OUT
//   cy[r, o] = act(Σ_{j<W} taps[o, j]·(hist_0, …, hist_{W−2}, y0[r, o])_j)   o < CC (act: SiLU with CONV_SILU)
// with hist the W − 1 previous inputs of channel o in the row's slot (oldest first), then hist ← (hist_1, …, y0[r, o]):
// short_conv_fused.wgsl for sequences of one token, in the GEMV's epilogue (the lane that writes y0[r, o] owns the
// channel, so no other thread touches it). Taps and order as short_conv.wgsl (f32 fma, j = 0 … W − 1).
// Bindings as matmul_fp8_gemv_vec with 5 = stepmeta, 6 = cst (the history [slots, W − 1, CC] f32), 8 = cy [R, CC];
// vb = gn [IN] | taps [CC, W] (the norm weight, then the conv taps); dims[4] = (BC, 0, CC, W).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> vb: array<f32>;
@group(0) @binding(3) var<storage, read> W0: array<WUNIT>;
@group(0) @binding(4) var<storage, read> S0: array<f32>;
@group(0) @binding(5) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(6) var<storage, read_write> cst: array<f32>;    // conv history [slots, W − 1, CC]
@group(0) @binding(7) var<storage, read_write> y0: array<f32>;
@group(0) @binding(8) var<storage, read_write> cy: array<f32>;     // conv output [R, CC]
@group(0) @binding(9) var<uniform> dims: array<vec4u, 5>;

#include "matmul_fp8_gemv_core.wgsl"
