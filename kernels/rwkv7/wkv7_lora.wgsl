// wkv7_lora: one RWKV7 time-mix layer core with its LoRA up-projections and gate math in the prologue
// (spec-rwkv7-gla-abc.md §1.3 steps 4–11), token by token. Per token t and channel c, from the activated LoRA
// down-projections l = [tanh(xw·W1ᵀ) | xa·A1ᵀ | σ(xg·G1ᵀ) | xv·V1ᵀ] (lora, R = RW + RA + RG + RV columns):
//   w = −e^{−0.5}·σ(w0 + l_w·W2ᵀ)   a = σ(a0 + l_a·A2ᵀ)   g = l_g·G2ᵀ   m = σ(v0 + l_v·V2ᵀ) (not FIRST)
// then as wkv7_recurrent: v ← lerp(v, v_first, m); κ̂ = norm(k⊙k_k); k̃ = k⊙(1 + (a−1)⊙k_a);
//   u = −κ̂ᵀS;  S ← diag(e^w)·S + (κ̂⊙a)·uᵀ + k̃·vᵀ;  o = rᵀS;  y = (GroupNorm(o) + (Σ r⊙k̃⊙r_k)·v) ⊙ g
// Bindings: step uniform; stepmeta u32 (cursors); proj [6, cap, C] (planes r 0, k 2, v 3 read); lora [N, R];
// W [R, C] packed (WDT): the up-projections transposed and stacked (W2ᵀ, A2ᵀ, G2ᵀ, V2ᵀ), row i = lora column i;
// params [8, C] = k_k, k_a, r_k, g_norm.weight, g_norm.bias, w0, a0, v0; vfirst [N, C] (written if FIRST);
// state [slots, H, D, D] f32 (S[i][j], i = key); y [N, C].
// Dispatch: (H, B) workgroups of KS·D threads. The prologue's dot products are split KS ways (thread (q, j) sums rows
// q, q + KS, … of each up-projection for channel h·D + j, eight loads in flight; the KS partial sums are added in
// order q = 0..KS−1 through workgroup memory); the recurrence then runs on the threads q = 0, thread j owning
// column j of S (D registers); every thread takes part in every barrier.
// Runtime dims: C, GN_EPS, RW, RA (f32). Defines: D, KS, R, RG, FIRST, FUSE_NORM, WDT/W_F32/W_F16. All arithmetic f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(3) var<storage, read> lora: array<f32>;        // [N, R]
@group(0) @binding(4) var<storage, read> W: array<u32>;           // [R, C] packed
@group(0) @binding(5) var<storage, read> params: array<f32>;      // [8, C]
@group(0) @binding(6) var<storage, read_write> vfirst: array<f32>; // [N, C]
@group(0) @binding(7) var<storage, read_write> state: array<f32>; // [slots, H, D, D]
@group(0) @binding(8) var<storage, read_write> y: array<f32>;     // [N, C]
@group(0) @binding(9) var<uniform> dims: vec4f;                   // C, GN_EPS, RW, RA

var<workgroup> sh_l: array<f32, R>;
var<workgroup> sh_kk: array<f32, D>;
var<workgroup> sh_beta: array<f32, D>;
var<workgroup> sh_kt: array<f32, D>;
var<workgroup> sh_r: array<f32, D>;
var<workgroup> sh_dec: array<f32, D>;
var<workgroup> red: array<vec2f, D>;
var<workgroup> part: array<vec4f, KS * D>;   // per (q, j): partial sums of the w, a, g, v up-projections

// Sum of v over the threads q = 0 (the others pass v unused and take part in the barriers).
fn wg_sum2(v: vec2f, j: u32, q: u32) -> vec2f {
  if (q == 0u) { red[j] = v; }
  workgroupBarrier();
  for (var s = D / 2u; s > 0u; s >>= 1u) {
    if (q == 0u && j < s) { red[j] += red[j + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

fn wel(i: u32, c: u32, C: u32) -> f32 {
  let p = wpair((i * C + c) >> 1u);
  return select(p.x, p.y, (c & 1u) == 1u);
}

// Σ sh_l[i]·W[i, c] over i = i0 + q, i0 + q + KS, … < i1, eight loads in flight
fn up(i0: u32, i1: u32, q: u32, c: u32, C: u32) -> f32 {
  var s = vec4f(0.0);
  var i = i0 + q;
  for (; i + 7u * KS < i1; i += 8u * KS) {
    let w0 = vec4f(wel(i, c, C), wel(i + KS, c, C), wel(i + 2u * KS, c, C), wel(i + 3u * KS, c, C));
    let w1 = vec4f(wel(i + 4u * KS, c, C), wel(i + 5u * KS, c, C), wel(i + 6u * KS, c, C), wel(i + 7u * KS, c, C));
    s += vec4f(sh_l[i], sh_l[i + KS], sh_l[i + 2u * KS], sh_l[i + 3u * KS]) * w0;
    s += vec4f(sh_l[i + 4u * KS], sh_l[i + 5u * KS], sh_l[i + 6u * KS], sh_l[i + 7u * KS]) * w1;
  }
  for (; i < i1; i += KS) { s.x += sh_l[i] * wel(i, c, C); }
  return (s.x + s.y) + (s.z + s.w);
}

@compute @workgroup_size(KS * D)
fn wkv7_lora(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
  let C = u32(dims.x);
  let GN_EPS = dims.y;
  let RW = u32(dims.z);
  let RA = u32(dims.w);
  let H = C / D;
  let h = g.x;
  let seq = g.y;
  if (seq >= step.b) { return; }
  let cu = cursor(seq);
  let slot = cu.slot;
  let start = cu.start;
  let len = cu.len;
  let j = l.x % D;
  let q = l.x / D;
  let base = (slot * H + h) * D * D;
  var S: array<f32, D>;
  if (q == 0u) { for (var i = 0u; i < D; i++) { S[i] = state[base + i * D + j]; } }
  let plane = step.cap * C;
  let c = h * D + j;
  for (var t = start; t < start + len; t++) {
    for (var i = l.x; i < R; i += KS * D) { sh_l[i] = lora[t * R + i]; }
    workgroupBarrier();
    let tc = t * C + c;
    var pv = vec4f(up(0u, RW, q, c, C), up(RW, RW + RA, q, c, C), up(RW + RA, RW + RA + RG, q, c, C), 0.0);
    if (!FIRST) { pv.w = up(RW + RA + RG, R, q, c, C); }
    part[l.x] = pv;
    workgroupBarrier();
    var ps = part[j];
    for (var k = 1u; k < KS; k++) { ps += part[k * D + j]; }
    let lw = -0.6065306597126334 * sigmoid(ps.x + params[5u * C + c]);
    let a = sigmoid(ps.y + params[6u * C + c]);
    let gate = ps.z;
    let r = proj[tc];
    let k = proj[2u * plane + tc];
    var v = proj[3u * plane + tc];
    if (FIRST) {
      if (q == 0u) { vfirst[tc] = v; }
    } else {
      let m = sigmoid(ps.w + params[7u * C + c]);
      let vf = vfirst[tc];
      if (abs(m) < 0.5) { v = v + m * (vf - v); } else { v = vf - (vf - v) * (1.0 - m); }   // torch.lerp
    }
    let kk = k * params[c];
    let kt = k * (1.0 + (a - 1.0) * params[C + c]);
    let sums = wg_sum2(vec2f(kk * kk, r * kt * params[2u * C + c]), j, q);   // its barriers also end this token's reads of sh_l and part
    var inv: f32;
    if (FUSE_NORM) { inv = inverseSqrt(sums.x + 1e-6); } else { inv = 1.0 / max(sqrt(sums.x), 1e-12); }
    let kn = kk * inv;
    if (q == 0u) {
      sh_kk[j] = kn;
      sh_beta[j] = kn * a;
      sh_kt[j] = kt;
      sh_r[j] = r;
      sh_dec[j] = exp(lw);
    }
    workgroupBarrier();
    var o = 0.0;
    if (q == 0u) {
      var u = 0.0;
      for (var i = 0u; i < D; i++) { u -= sh_kk[i] * S[i]; }
      for (var i = 0u; i < D; i++) {
        S[i] = sh_dec[i] * S[i] + sh_beta[i] * u + sh_kt[i] * v;
        o += sh_r[i] * S[i];
      }
    }
    let mu = wg_sum2(vec2f(o, 0.0), j, q).x / f32(D);
    let var_ = wg_sum2(vec2f((o - mu) * (o - mu), 0.0), j, q).x / f32(D);
    let on = (o - mu) * inverseSqrt(var_ + GN_EPS) * params[3u * C + c] + params[4u * C + c];
    if (q == 0u) { y[tc] = (on + sums.y * v) * gate; }
  }
  if (q == 0u) { for (var i = 0u; i < D; i++) { state[base + i * D + j] = S[i]; } }
}
