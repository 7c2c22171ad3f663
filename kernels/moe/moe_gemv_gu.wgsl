// moe_gemv_gu: the routed experts' gate/up projections for few tokens (decode), SwiGLU fused:
//   act[t·K + j, i] = silu(Σ_c h[t, c]·W[e, i, c]) · (Σ_c h[t, c]·W[e, I + i, c]),  e = sel[t, j]
// for the experts e of this part [E0, E0 + EP) (others left alone). W [EP, 2I, C] is the part's gate|up tensor
// (per expert I gate rows, then I up rows), read through wquad() (bf16/f16/f32 or fp8 with block scales).
// Bindings: step; h [N, C] f32; sel [N, 2K] f32; W u32; act [N·K, I] f32; dims (C, I, K, E0), (EP, SC), fq; S (fp8).
// Dispatch: RPW intermediate rows i per workgroup of TPR·RPW threads (2-D over row blocks), z = N·K assignments.
// TPR lanes stride over C in quads, then a workgroup tree reduction. Only the chosen experts' rows are read.
#include "common.wgsl"
#include "wquad.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> h: array<vec4f>;          // [N, C/4]
@group(0) @binding(2) var<storage, read> sel: array<f32>;          // [N, 2K]
@group(0) @binding(3) var<storage, read> W: array<u32>;            // [EP, 2I, C]
@group(0) @binding(4) var<storage, read_write> act: array<f32>;    // [N·K, I]
@group(0) @binding(5) var<uniform> dims: array<vec4u, 3>;
@group(0) @binding(6) var<storage, read> S: array<f32>;          // fp8 block scales (placeholder otherwise)

var<workgroup> red: array<vec2f, TPR * RPW>;

@compute @workgroup_size(TPR * RPW)
fn moe_gemv_gu(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  _ = &S;
  let C = dims[0].x;
  let I = dims[0].y;
  let K = dims[0].z;
  let E0 = dims[0].w;
  let EP = dims[1].x;
  let a = g.z;
  let t = a / K;
  let e = u32(sel[t * 2u * K + a % K]);
  let lane = l.x % TPR;
  let sub = l.x / TPR;
  let i = (g.x + g.y * ng.x) * RPW + sub;
  let live = t < step.n && e >= E0 && e < E0 + EP && i < I;
  var acc = vec2f(0.0);
  if (live) {
    let gr = (e - E0) * 2u * I + i;
    for (var q = lane; q < C / 4u; q += TPR) {
      let xv = h[t * (C / 4u) + q];
      acc += vec2f(dot(wquad(gr, q, C), xv), dot(wquad(gr + I, q, C), xv));
    }
  }
  red[l.x] = acc;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red[l.x] += red[l.x + s]; }
    workgroupBarrier();
  }
  if (live && lane == 0u) {
    let v = red[l.x];
    act[a * I + i] = v.x / (1.0 + exp(-v.x)) * v.y;
  }
}
