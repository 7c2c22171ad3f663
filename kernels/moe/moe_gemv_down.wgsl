// moe_gemv_down: the routed experts' down projections for few tokens (decode), weighted and summed over the K
// chosen experts, added to the residual:
//   y[t, o] += Σ_j [e_j in this part] w_j · Σ_i act[t·K + j, i]·W[e_j, o, i],  e_j = sel[t, j], w_j = sel[t, K + j]
// W [EP, C, I] is the part's down tensor (experts [E0, E0 + EP)), read through wquad().
// Bindings: step; act [N·K, I] f32; sel [N, 2K] f32; W u32; y [N, C] f32; dims (C, I, K, E0), (EP, SC), fq; S (fp8).
// Dispatch: RPW output rows o per workgroup of TPR·RPW threads (2-D over row blocks), z = N tokens. Each lane
// sums its quads over all K experts, then one workgroup tree reduction.
#include "common.wgsl"
#include "wquad.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> act: array<vec4f>;        // [N·K, I/4]
@group(0) @binding(2) var<storage, read> sel: array<f32>;          // [N, 2K]
@group(0) @binding(3) var<storage, read> W: array<u32>;            // [EP, C, I]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;      // [N, C]
@group(0) @binding(5) var<uniform> dims: array<vec4u, 3>;
@group(0) @binding(6) var<storage, read> S: array<f32>;          // fp8 block scales (placeholder otherwise)

var<workgroup> red: array<f32, TPR * RPW>;

@compute @workgroup_size(TPR * RPW)
fn moe_gemv_down(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  _ = &S;
  let C = dims[0].x;
  let I = dims[0].y;
  let K = dims[0].z;
  let E0 = dims[0].w;
  let EP = dims[1].x;
  let t = g.z;
  let lane = l.x % TPR;
  let sub = l.x / TPR;
  let o = (g.x + g.y * ng.x) * RPW + sub;
  var acc = 0.0;
  var any = false;
  if (o < C && t < step.n) {
    for (var j = 0u; j < K; j++) {
      let e = u32(sel[t * 2u * K + j]);
      if (e < E0 || e >= E0 + EP) { continue; }
      any = true;
      let w = sel[t * 2u * K + K + j];
      let gr = (e - E0) * C + o;
      var s = 0.0;
      for (var q = lane; q < I / 4u; q += TPR) { s += dot(wquad(gr, q, I), act[(t * K + j) * (I / 4u) + q]); }
      acc += w * s;
    }
  }
  red[l.x] = acc;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red[l.x] += red[l.x + s]; }
    workgroupBarrier();
  }
  if (any && lane == 0u) { y[t * C + o] += red[l.x]; }
}
