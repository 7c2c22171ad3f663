// abc_recurrent: ABC's bounded-memory recurrence, token by token over each packed sequence (spec-rwkv7-gla-abc.md
// §3.3 step 5 with the full-forward semantics of §3.4: z is kept per slot and restarts at a sequence's first token):
//   s ← clamp(s, CLAMP_MIN, CLAMP_MAX);  first token (pos 0): z = s, α = 0, β = 1;
//   else z' = logaddexp(z, s), α = e^{z−z'}, β = e^{s−z'}
//   Hk[i][m] = α_m·Hk[i][m] + k_i·β_m;  ok_m = Σ_i (SCALE·q_i)·Hk[i][m];  p = softmax_m(ok)
//   Hv[m][j] = α_m·Hv[m][j] + β_m·v_j;  o_j = Σ_m p_m·Hv[m][j]
// Bindings: step uniform; stepmeta u32 (cursors); q, k [N, H·DK] (rotated); v [N, H·DV]; s [N, H·M];
// state [slots, SLOT] f32: per slot Hk [H, DK, M], Hv [H, M, DV], z [H, M]; o [N, H·DV].
// Dispatch: (H, B) workgroups of WG threads; thread l owns Hk columns m = l + c·WG (c < NM, DK registers each)
// and Hv columns j = l + c·WG (c < NV, M registers each). Runtime dims: H, SCALE, CLAMP_MIN, CLAMP_MAX.
// Defines: DK, DV, M, WG, NM, NV. All arithmetic f32; the softmax max/sum are computed by every thread.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> s: array<f32>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> o: array<f32>;
@group(0) @binding(8) var<uniform> dims: vec4f;               // H, SCALE, CLAMP_MIN, CLAMP_MAX

var<workgroup> sh_q: array<f32, DK>;
var<workgroup> sh_k: array<f32, DK>;
var<workgroup> sh_a: array<f32, M>;
var<workgroup> sh_b: array<f32, M>;
var<workgroup> sh_z: array<f32, M>;
var<workgroup> sh_ok: array<f32, M>;

@compute @workgroup_size(WG)
fn abc_recurrent(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
  let H = u32(dims.x);
  let SCALE = dims.y;
  let h = g.x;
  let seq = g.y;
  if (seq >= step.b) { return; }
  let cu = cursor(seq);
  let slot = cu.slot;
  let start = cu.start;
  let len = cu.len;
  let pos = cu.pos;
  let SLOT = H * (DK * M + M * DV + M);
  let kb = slot * SLOT + h * DK * M;
  let vb = slot * SLOT + H * DK * M + h * M * DV;
  let zb = slot * SLOT + H * (DK * M + M * DV) + h * M;
  var HK: array<f32, DK * NM>;
  var HV: array<f32, M * NV>;
  for (var c = 0u; c < NM; c++) {
    let m = l.x + c * WG;
    if (m < M) { for (var i = 0u; i < DK; i++) { HK[c * DK + i] = state[kb + i * M + m]; } }
  }
  for (var c = 0u; c < NV; c++) {
    let j = l.x + c * WG;
    if (j < DV) { for (var m = 0u; m < M; m++) { HV[c * M + m] = state[vb + m * DV + j]; } }
  }
  for (var m = l.x; m < M; m += WG) { sh_z[m] = state[zb + m]; }
  for (var t = start; t < start + len; t++) {
    workgroupBarrier();
    let first = pos == 0u && t == start;
    for (var m = l.x; m < M; m += WG) {
      let sv = clamp(s[(t * H + h) * M + m], dims.z, dims.w);
      if (first) {
        sh_z[m] = sv; sh_a[m] = 0.0; sh_b[m] = 1.0;
      } else {
        let zp = sh_z[m];
        let z = max(zp, sv) + log1p_(exp(-abs(zp - sv)));
        sh_a[m] = exp(zp - z);
        sh_b[m] = exp(sv - z);
        sh_z[m] = z;
      }
    }
    for (var i = l.x; i < DK; i += WG) {
      sh_q[i] = SCALE * q[(t * H + h) * DK + i];
      sh_k[i] = k[(t * H + h) * DK + i];
    }
    workgroupBarrier();
    for (var c = 0u; c < NM; c++) {
      let m = l.x + c * WG;
      if (m < M) {
        let a = sh_a[m];
        let b = sh_b[m];
        var acc = 0.0;
        for (var i = 0u; i < DK; i++) {
          let x = a * HK[c * DK + i] + sh_k[i] * b;
          HK[c * DK + i] = x;
          acc += sh_q[i] * x;
        }
        sh_ok[m] = acc;
      }
    }
    workgroupBarrier();
    var mx = sh_ok[0];
    for (var m = 1u; m < M; m++) { mx = max(mx, sh_ok[m]); }
    var sum = 0.0;
    for (var m = 0u; m < M; m++) { sum += exp(sh_ok[m] - mx); }
    let inv = 1.0 / sum;
    for (var c = 0u; c < NV; c++) {
      let j = l.x + c * WG;
      if (j < DV) {
        let vj = v[(t * H + h) * DV + j];
        var acc = 0.0;
        for (var m = 0u; m < M; m++) {
          let x = sh_a[m] * HV[c * M + m] + sh_b[m] * vj;
          HV[c * M + m] = x;
          acc += exp(sh_ok[m] - mx) * inv * x;
        }
        o[(t * H + h) * DV + j] = acc;
      }
    }
  }
  for (var c = 0u; c < NM; c++) {
    let m = l.x + c * WG;
    if (m < M) { for (var i = 0u; i < DK; i++) { state[kb + i * M + m] = HK[c * DK + i]; } }
  }
  for (var c = 0u; c < NV; c++) {
    let j = l.x + c * WG;
    if (j < DV) { for (var m = 0u; m < M; m++) { state[vb + m * DV + j] = HV[c * M + m]; } }
  }
  workgroupBarrier();
  for (var m = l.x; m < M; m += WG) { state[zb + m] = sh_z[m]; }
}
