// kv_store: cache[slot, pos, c] = x[t, c], pos = cursor.pos + offset of t in its sequence (KV cache append; the
// layout in kv_cache.wgsl).
// Bindings: step uniform; stepmeta u32; x [N, KV·D] f32; cache [slots, ctx, KV·D] stored as KVDT in u32 words.
// Defines: KVDT 1 = f32 (one word per element, bitcast), 2 = bf16 (round to nearest even), 3 = f16 (pack2x16float,
// core WGSL: no shader-f16 needed); 16-bit pairs (c, c+1) share a word, c even, low half first.
// Dispatch: one thread per (t, word of the row), 64 per workgroup, 2-D. Runtime dims: KV·D, ctx.
#include "common.wgsl"
#include "kv_cache.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;             // [N, KV·D]
@group(0) @binding(3) var<storage, read_write> cache: array<u32>;   // [slots, ctx, KV·D] (÷2 words when 16-bit)
@group(0) @binding(4) var<uniform> dims: vec4u;                      // KV·D, ctx

@compute @workgroup_size(64)
fn kv_store(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let W = dims.x;
#if KV16
  let WW = W / 2u;
#else
  let WW = W;
#endif
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.n * WW) { return; }
  let t = i / WW;
  let o = kv_row(t, dims.y, WW) + i % WW;   // rows of WW words
#if KV16
  cache[o] = kv_pack(x[t * W + 2u * (i % WW)], x[t * W + 2u * (i % WW) + 1u]);
#else
  cache[o] = bitcast<u32>(x[i]);
#endif
}
