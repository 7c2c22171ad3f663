// conv_store: the slot history of short_conv ← the last W−1 conv inputs of each sequence of the step (its old
// history continued by this step's tokens). Bindings: step uniform; stepmeta u32 (cursors); x [N, xS] (channel c
// at column xO + c); state [slots, W−1, C]. Dispatch: one thread per (sequence, c), 64 per workgroup (each thread
// owns its channel's whole history, so reading old entries and writing new ones cannot race). Runtime dims:
// (C, W, xS, xO) (W ≤ 17).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;              // [N, xS]
@group(0) @binding(3) var<storage, read_write> state: array<f32>;    // [slots, W-1, C]
@group(0) @binding(4) var<uniform> dims: array<vec4u, 2>;             // (C, W, xS, xO)

@compute @workgroup_size(64)
fn conv_store(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims[0].x;
  let Hn = dims[0].y - 1u;
  let xS = dims[0].z;
  let xO = dims[0].w;
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.b * C) { return; }
  let s = i / C;
  let c = i % C;
  let cu = cursor(s);
  let slot = cu.slot;
  let start = cu.start;
  let len = cu.len;
  if (len == 0u) { return; }
  var old: array<f32, 16>;   // W − 1 ≤ 16
  let base = slot * Hn * C + c;
  for (var j = 0u; j < Hn; j++) { old[j] = state[base + j * C]; }
  let end = start + len;
  for (var j = 0u; j < Hn; j++) {
    let back = Hn - j;            // position end − back
    var v: f32;
    if (len >= back) { v = x[(end - back) * xS + xO + c]; } else { v = old[Hn - (back - len)]; }
    state[base + j * C] = v;
  }
}
