// kv_store: cache[slot, pos, c] = x[t, c], pos = cursor.pos + offset of t in its sequence (KV cache append).
// Bindings: step uniform; stepmeta u32; x [N, KV·D] f32; cache [slots, ctx, KV·D] f32.
// Dispatch: one thread per (t, c), 64 per workgroup, 2-D. Runtime dims: KV·D, ctx.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;             // [N, KV·D]
@group(0) @binding(3) var<storage, read_write> cache: array<f32>;   // [slots, ctx, KV·D]
@group(0) @binding(4) var<uniform> dims: vec4u;                      // KV·D, ctx

@compute @workgroup_size(64)
fn kv_store(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let W = dims.x;
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.n * W) { return; }
  let t = i / W;
  let cu = cursor(seq_of(t));
  let p = cu.pos + t - cu.start;
  cache[(cu.slot * dims.y + p) * W + i % W] = x[i];
}
