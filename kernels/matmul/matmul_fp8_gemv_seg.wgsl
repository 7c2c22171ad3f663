// matmul_fp8_gemv_seg: matmul_fp8_gemv_vec.wgsl (NP 1, NORM as there; no bias or accumulation) over one stacked weight
// whose output rows go to four tensors by segment, each with its activation (Qwen3-Next's gated attention: q | gate
// (sigmoid) | k | v in one dispatch, spec-deltanet-attention-qwen3next.md §8.5):
//   y0[r, o] = act0(n[r]·Ŵ[o]) for o < s1, y1[r, o − s1] = act1(…) for s1 ≤ o < s2, y2 … < s3, y3 … < OUT.
// Bindings as matmul_fp8_gemv_vec with 5 = y2, 6 = y3 (W1 / S1 there); dims[1] = (OUT, s1, workgroups, 0),
// dims[4] = (BC, 0, s2, s3). Defines ACT0 … ACT3 (act codes of matmul.ref.ts).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> vb: array<f32>;
@group(0) @binding(3) var<storage, read> W0: array<WUNIT>;
@group(0) @binding(4) var<storage, read> S0: array<f32>;
@group(0) @binding(5) var<storage, read_write> y2: array<f32>;
@group(0) @binding(6) var<storage, read_write> y3: array<f32>;
@group(0) @binding(7) var<storage, read_write> y0: array<f32>;
@group(0) @binding(8) var<storage, read_write> y1: array<f32>;
@group(0) @binding(9) var<uniform> dims: array<vec4u, 5>;

#include "matmul_fp8_gemv_core.wgsl"
