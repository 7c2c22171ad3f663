// rope: rotate-half RoPE in place on x [N, H·D], first R dims of each head, position = cursor.pos + offset in
// the sequence (spec-deltanet-attention-qwen3next.md §1.6). cos/sin come from a host table (exact fp32 angles).
// Bindings: step uniform; stepmeta u32 (token→sequence, cursors); x [N, H·D] f32 (in place); table [2, P, R/2] f32.
// Dispatch: one thread per (token, head, i < R/2), 64 per workgroup, 2-D. Runtime dims: H, D, R, P.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;    // [N, H·D]
@group(0) @binding(3) var<storage, read> table: array<f32>;      // [2, P, R/2]
@group(0) @binding(4) var<uniform> dims: vec4u;                   // H, D, R, P

@compute @workgroup_size(64)
fn rope(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.x;
  let D = dims.y;
  let half = dims.z / 2u;
  let P = dims.w;
  let idx = gid.x + gid.y * ng.x * 64u;
  if (idx >= step.n * H * half) { return; }
  let i = idx % half;
  let th = idx / half;            // token · H + head
  let t = th / H;
  let cu = cursor(seq_of(t));
  let p = min(cu.pos + t - cu.start, P - 1u);
  let c = table[p * half + i];
  let s = table[P * half + p * half + i];
  let b = th * D;
  let x1 = x[b + i];
  let x2 = x[b + i + half];
  x[b + i] = x1 * c - x2 * s;
  x[b + i + half] = x2 * c + x1 * s;
}
