// token_shift: out[m, t, c] = h[t, c] + (prev − h[t, c])·mix[m, c], prev = h[t−1, c], or the sequence's
// shift state for its first token (spec-rwkv7-gla-abc.md §1.3 steps 2–3, §1.4).
// Bindings: step uniform; stepmeta u32 (token→sequence at seq_off, cursors at cur_off); h [N, C]; state [slots, C];
// mix [M, C]; out [M, cap, C] (plane stride step.cap·C). Dispatch: one thread per (t, c), 64 per workgroup, 2-D.
// Runtime dims: C, M. The state is updated afterwards by shift_store, so no thread here writes what another reads.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;          // [N, C]
@group(0) @binding(3) var<storage, read> state: array<f32>;      // [slots, C]
@group(0) @binding(4) var<storage, read> mix: array<f32>;        // [M, C]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;  // [M, cap, C]
@group(0) @binding(6) var<uniform> dims: vec4u;                   // C, M

@compute @workgroup_size(64)
fn token_shift(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let M = dims.y;
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.n * C) { return; }
  let t = i / C;
  let c = i % C;
  let s = seq_of(t);
  let cu = cursor(s);
  let slot = cu.slot;
  let start = cu.start;
  let x = h[i];
  var prev: f32;
  if (t == start) { prev = state[slot * C + c]; } else { prev = h[i - C]; }
  let d = prev - x;
  for (var m = 0u; m < M; m++) {
    out[m * step.cap * C + i] = fma(d, mix[m * C + c], x);
  }
}
