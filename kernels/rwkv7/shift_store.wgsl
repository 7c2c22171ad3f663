// shift_store: state[slot, c] = h[start + len − 1, c] for every sequence of the step (the token-shift cache).
// Bindings: step uniform; stepmeta u32 (cursors at cur_off); h [N, C]; state [slots, C].
// Dispatch: one thread per (sequence, c), 64 per workgroup. Runtime dims: C.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;              // [N, C]
@group(0) @binding(3) var<storage, read_write> state: array<f32>;    // [slots, C]
@group(0) @binding(4) var<uniform> dims: vec4u;                       // C

@compute @workgroup_size(64)
fn shift_store(@builtin(global_invocation_id) gid: vec3u) {
  let C = dims.x;
  let i = gid.x;
  if (i >= step.b * C) { return; }
  let s = i / C;
  let c = i % C;
  let cu = cursor(s);
  let len = cu.len;
  if (len == 0u) { return; }
  state[cu.slot * C + c] = h[(cu.start + len - 1u) * C + c];
}
