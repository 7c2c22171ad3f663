// short_conv: causal depthwise convolution over each packed sequence (spec-deltanet-attention-qwen3next.md §1.4):
//   y[t, c] = act(Σ_{j<W} w[c, j]·x[t−(W−1)+j, c]), inputs before the sequence's first token from the slot history.
// Bindings: step uniform; stepmeta u32 (token→sequence, cursors); x [N, xS] (channel c at column xO + c); w [C, W]
// f32; state [slots, W−1, C] (oldest first); y [N, C]. Dispatch: one thread per (t, c), 64 per workgroup, 2-D grid.
// Runtime dims: (C, W, xS, xO), (SPLIT). Defines: SILU (channels < SPLIT; channels ≥ SPLIT always take SiLU).
// f32 accumulation, taps in order j = 0..W−1. The history is updated afterwards by conv_store (the 'split' variant;
// short_conv_fused.wgsl does both in one dispatch).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;          // [N, xS]
@group(0) @binding(3) var<storage, read> w: array<f32>;          // [C, W]
@group(0) @binding(4) var<storage, read> state: array<f32>;      // [slots, W-1, C]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;    // [N, C]
@group(0) @binding(6) var<uniform> dims: array<vec4u, 2>;         // (C, W, xS, xO), (SPLIT)

@compute @workgroup_size(64)
fn short_conv(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims[0].x;
  let W = dims[0].y;
  let xS = dims[0].z;
  let xO = dims[0].w;
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.n * C) { return; }
  let t = i / C;
  let c = i % C;
  let cu = cursor(seq_of(t));
  let slot = cu.slot;
  let start = cu.start;
  let Hn = W - 1u;
  var s = 0.0;
  for (var j = 0u; j < W; j++) {
    let back = Hn - j;             // tokens before t
    var v: f32;
    if (t >= start + back) { v = x[(t - back) * xS + xO + c]; }
    else { v = state[(slot * Hn + Hn - (back - (t - start))) * C + c]; }
    s = fma(w[c * W + j], v, s);
  }
  if (SILU || c >= dims[1].x) { s = s * sigmoid(s); }
  y[i] = s;
}
