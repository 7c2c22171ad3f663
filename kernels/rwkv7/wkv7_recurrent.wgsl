// wkv7_recurrent: one RWKV7 time-mix layer core, token by token (spec-rwkv7-gla-abc.md §1.3 steps 5–11):
//   v ← lerp(v, v_first, m);  κ̂ = norm(k⊙k_k);  k̃ = k⊙(1 + (a−1)⊙k_a)
//   u = −κ̂ᵀS;  S ← diag(e^w)·S + (κ̂⊙a)·uᵀ + k̃·vᵀ;  o = rᵀS
//   y = (GroupNorm(o) + (Σ r⊙k̃⊙r_k)·v) ⊙ g
// Bindings: step uniform; stepmeta u32 (cursors); proj [6, cap, C] planes r,w,k,v,a,g; vfirst [N, C] (written if FIRST);
// vmix [N, C]; params [5, C] = k_k, k_a, r_k, g_norm.weight, g_norm.bias; state [slots, H, D, D] f32 (S[i][j], i = key);
// y [N, C]. Dispatch: (H, B) workgroups of D threads; thread j owns column j of S (D registers).
// Runtime dims: C, GN_EPS. Defines: D, FIRST, FUSE_NORM. All arithmetic f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(3) var<storage, read_write> vfirst: array<f32>; // [N, C]
@group(0) @binding(4) var<storage, read> vmix: array<f32>;        // [N, C]
@group(0) @binding(5) var<storage, read> params: array<f32>;      // [5, C]
@group(0) @binding(6) var<storage, read_write> state: array<f32>; // [slots, H, D, D]
@group(0) @binding(7) var<storage, read_write> y: array<f32>;     // [N, C]
@group(0) @binding(8) var<uniform> dims: vec4f;                   // C, GN_EPS

var<workgroup> sh_kk: array<f32, D>;
var<workgroup> sh_beta: array<f32, D>;
var<workgroup> sh_kt: array<f32, D>;
var<workgroup> sh_r: array<f32, D>;
var<workgroup> sh_dec: array<f32, D>;
#include "rwkv7_red.wgsl"
#include "wkv7_chan.wgsl"
#include "wkv7_token.wgsl"



@compute @workgroup_size(D)
fn wkv7_recurrent(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
  let C = u32(dims.x);
  let GN_EPS = dims.y;
  let H = C / D;
  let h = g.x;
  let seq = g.y;
  if (seq >= step.b) { return; }
  let cu = cursor(seq);
  let slot = cu.slot;
  let start = cu.start;
  let len = cu.len;
  let j = l.x;
  let base = (slot * H + h) * D * D;
  var S: array<f32, D>;
  for (var i = 0u; i < D; i++) { S[i] = state[base + i * D + j]; }
  let plane = step.cap * C;
  let c = h * D + j;
  for (var t = start; t < start + len; t++) {
    let tc = t * C + c;
    let ti = token_inputs(tc, c, C, plane, j);
    let r = ti.r;
    let a = ti.a;
    let v = ti.v;
    let kt = ti.kt;
    let kn = ti.kn;
    sh_kk[j] = kn;
    sh_beta[j] = kn * a;
    sh_kt[j] = kt;
    sh_r[j] = r;
    sh_dec[j] = exp(proj[plane + tc]);
    workgroupBarrier();
    var u = 0.0;
    for (var i = 0u; i < D; i++) { u -= sh_kk[i] * S[i]; }
    var o = 0.0;
    for (var i = 0u; i < D; i++) {
      S[i] = sh_dec[i] * S[i] + sh_beta[i] * u + sh_kt[i] * v;
      o += sh_r[i] * S[i];
    }
    let mu = wg_sum2(vec2f(o, 0.0), j, 1u).x / f32(D);
    let var_ = wg_sum2(vec2f((o - mu) * (o - mu), 0.0), j, 1u).x / f32(D);
    let on = (o - mu) * inverseSqrt(var_ + GN_EPS) * params[3u * C + c] + params[4u * C + c];
    y[tc] = (on + ti.bonus * v) * proj[5u * plane + tc];
  }
  for (var i = 0u; i < D; i++) { state[base + i * D + j] = S[i]; }
}
