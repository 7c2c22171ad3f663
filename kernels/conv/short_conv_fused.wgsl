// short_conv_fused: the causal depthwise short convolution of short_conv.wgsl and the history update of
// conv_store.wgsl in one dispatch (spec-deltanet-attention-qwen3next.md §1.4): y[t, c] = act_c(Σ_{j<W} w[c, j]·
// x[t−(W−1)+j, c]), inputs before a sequence's first token from the slot history, then that history ← the last W−1
// inputs. In place without a race: the thread of a sequence's first token computes the first min(len, W−1)
// outputs (the only ones that read the history) and then writes the new history; the threads of the next W−2
// tokens return; every later token reads x only.
// Bindings: step uniform; stepmeta u32 (token→sequence, cursors); x [N, xS] (channel c at column xO + c: one part
// of a packed projection); w [C, W] f32; state [slots, W−1, C] (oldest first); y [N, C].
// Dispatch: one thread per (t, c), 64 per workgroup, 2-D grid. Runtime dims: (C, W, xS, xO), (SPLIT): channels
// c < SPLIT take SiLU iff SILU, channels ≥ SPLIT always (one conv over q|k|v whose v part always has it).
// f32 accumulation, taps in order j = 0..W−1 (as short_conv.wgsl). W ≤ 17.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;              // [N, xS]
@group(0) @binding(3) var<storage, read> w: array<f32>;              // [C, W]
@group(0) @binding(4) var<storage, read_write> state: array<f32>;    // [slots, W-1, C]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;        // [N, C]
@group(0) @binding(6) var<uniform> dims: array<vec4u, 2>;             // (C, W, xS, xO), (SPLIT)

fn act(c: u32, s: f32) -> f32 {
  if (SILU || c >= dims[1].x) { return s * sigmoid(s); }
  return s;
}

@compute @workgroup_size(64)
fn short_conv_fused(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims[0].x;
  let W = dims[0].y;
  let xS = dims[0].z;
  let xO = dims[0].w;
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.n * C) { return; }
  let t = i / C;
  let c = i % C;
  let cu = cursor(seq_of(t));
  let start = cu.start;
  let Hn = W - 1u;
  if (t >= start + Hn) {
    var s = 0.0;
    for (var j = 0u; j < W; j++) { s = fma(w[c * W + j], x[(t - Hn + j) * xS + xO + c], s); }
    y[i] = act(c, s);
    return;
  }
  if (t != start) { return; }
  // the sequence's first token: outputs of its first min(len, W − 1) tokens, then the history
  let len = cu.len;
  let base = cu.slot * Hn * C + c;
  var old: array<f32, 16>;   // W − 1 ≤ 16
  for (var j = 0u; j < Hn; j++) { old[j] = state[base + j * C]; }
  let head = min(len, Hn);
  for (var u = 0u; u < head; u++) {
    let tt = start + u;
    var s = 0.0;
    for (var j = 0u; j < W; j++) {
      let back = Hn - j;   // tokens before tt
      var v: f32;
      if (u >= back) { v = x[(tt - back) * xS + xO + c]; } else { v = old[Hn - (back - u)]; }
      s = fma(w[c * W + j], v, s);
    }
    y[tt * C + c] = act(c, s);
  }
  let end = start + len;
  for (var j = 0u; j < Hn; j++) {
    let back = Hn - j;   // position end − back
    var v: f32;
    if (len >= back) { v = x[(end - back) * xS + xO + c]; } else { v = old[Hn - (back - len)]; }
    state[base + j * C] = v;
  }
}
