// sdpa_combine: the second pass of split-K attention (sdpa_split.wgsl): out = Σ_s e^{m_s − M} acc_s / Σ_s e^{m_s − M} l_s
// with M = max_s m_s, over the S partials of each (token, head). spec-deltanet-attention-qwen3next.md §1.7.
// Bindings: step uniform; part [N, H·S·(D+2)] f32; out [N, H·D] f32; dims (as sdpa_split).
// Dispatch: one workgroup of WG threads per (token, head), 2-D grid over N·H; thread i owns dims i, i+WG, …. f32.
#include "common.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, S: u32, _a: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> part: array<f32>;         // [N, H·S·(D+2)]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;    // [N, H·D]
@group(0) @binding(3) var<uniform> dims: Dims;

@compute @workgroup_size(WG)
fn sdpa_combine(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.H;
  let D = dims.D;
  let S = dims.S;
  let th = wg.x + wg.y * ng.x;
  if (th >= step.n * H) { return; }
  let po = th * S * (D + 2u);   // (t·H + h)·S·(D+2): token t's row, head h's S partials
  var M = -3.0e38;
  for (var s = 0u; s < S; s++) { M = max(M, part[po + s * (D + 2u)]); }
  var den = 0.0;
  for (var s = 0u; s < S; s++) { den += exp(part[po + s * (D + 2u)] - M) * part[po + s * (D + 2u) + 1u]; }
  for (var d = l.x; d < D; d += WG) {
    var a = 0.0;
    for (var s = 0u; s < S; s++) { let o = po + s * (D + 2u); a += exp(part[o] - M) * part[o + 2u + d]; }
    out[th * D + d] = a / den;
  }
}
