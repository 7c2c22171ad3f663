// rms_norm: y[r] = x[r] / sqrt(mean(x[r]²) + EPS) · w (· (1 + w) if PLUS_ONE) (· silu(g[r]) if HAS_GATE)
// (spec-rwkv7-gla-abc.md §0.1; zero-centred form: spec-deltanet-attention-qwen3next.md).
// Bindings: step uniform; x [R, C] f32; w [C] f32 (dummy if !HAS_W); g f32 (dummy if !HAS_GATE): head j of token t's
// gate at g[t·GS + GO + j·C …], a part of a wider packed row (GS = G·C, GO = 0 when it has x's layout); y [R, C] f32.
// R = (step.k if ROWS_K else step.n) · G: G rows per token (per-head norms). Dispatch: one workgroup of WG threads
// per row, 2-D grid. Runtime dims: (C, G, EPS), (GS, GO). Defines: WG, HAS_W, PLUS_ONE, HAS_GATE, ROWS_K. f32 tree
// reduction.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<f32>;         // [R, C]
@group(0) @binding(2) var<storage, read> w: array<f32>;         // [C]
@group(0) @binding(3) var<storage, read> g: array<f32>;         // [tokens, GS]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;   // [R, C]
@group(0) @binding(5) var<uniform> dims: array<vec4f, 2>;       // (C, G, EPS), (GS, GO)

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn rms_norm(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = u32(dims[0].x);
  let G = u32(dims[0].y);
  let EPS = dims[0].z;
  let row = wg.x + wg.y * ng.x;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  if (row >= rows * G) { return; }
  let o = row * C;
  var s = 0.0;
  for (var c = l.x; c < C; c += WG) { s += x[o + c] * x[o + c]; }
  red[l.x] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (l.x < k) { red[l.x] += red[l.x + k]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(C) + EPS);
  for (var c = l.x; c < C; c += WG) {
    var v = x[o + c] * inv;
    if (HAS_W) { if (PLUS_ONE) { v *= 1.0 + w[c]; } else { v *= w[c]; } }
    if (HAS_GATE) { let z = g[(row / G) * u32(dims[1].x) + u32(dims[1].y) + (row % G) * C + c]; v *= z * sigmoid(z); }
    y[o + c] = v;
  }
}
