// matmul_fp8_gemv_gate: matmul_fp8_gemv_vec.wgsl (NP 1, no norm) whose input is the product of two tensors:
//   y0[r, o] (+)= act0((x[r] ⊙ xg[r])·Ŵ[o] + bias[o])
// (Qwen3-Next's gated attention: o_proj of attention ⊙ σ(gate), the product formed as the GEMV reads its input,
// spec-deltanet-attention-qwen3next.md §8.5). Bindings as matmul_fp8_gemv_vec with 5 = xg [R, IN] f32 and no second part.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> vb: array<f32>;
@group(0) @binding(3) var<storage, read> W0: array<WUNIT>;
@group(0) @binding(4) var<storage, read> S0: array<f32>;
@group(0) @binding(5) var<storage, read> xg: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> y0: array<f32>;
@group(0) @binding(7) var<uniform> dims: array<vec4u, 5>;

#include "matmul_fp8_gemv_core.wgsl"
