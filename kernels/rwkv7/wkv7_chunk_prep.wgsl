// wkv7_chunk_prep: first pass of the chunked RWKV7 prefill (wkv7_chunk.ts; spec-rwkv7-gla-abc.md §1.3 steps 5–8).
// Chunks of CH tokens start at each sequence's first token. Per token t and channel c of head h, as wkv7_recurrent:
//   v ← lerp(v, v_first, m) (FIRST: v_first := v);  κ̂ = norm(k⊙k_k);  k̃ = k⊙(1 + (a−1)⊙k_a);  bonus = Σ r⊙k̃⊙r_k
// and, with Γ_t = Σ_{s = chunk start..t} w_s the per-channel cumulative log-decay inside the chunk (Γ ≤ 0):
//   α = −κ̂,  β = κ̂⊙a,  rg = r⊙e^{Γ_t},  ag = α⊙e^{Γ_{t−1}} (Γ before the chunk's first token = 0),
//   bg = β⊙e^{Σ_{s>t} w_s},  kg = k̃⊙e^{Σ_{s>t} w_s}  (s up to the chunk's last token; summed, not Γ_n − Γ_t).
// Only exponentials of non-positive numbers are taken: no overflow whatever the decays. Every token sums its own
// Γ_t in token order from the chunk start, compensated (Γ = hi + lo, TwoSum), so Γ is the same as a sequential scan's;
// e^{Γ} is taken as e^{hi}·e^{lo}: |Γ| reaches 64·0.61 ≈ 39, where one f32 ulp of Γ alone is a 2e-6 relative error.
// Bindings: step uniform; stepmeta u32 (token → sequence, cursors); proj [6, cap, C] planes r,w,k,v,a,g; vfirst [N, C]
// (written if FIRST); vmix [N, C]; params [5, C] = k_k, k_a, r_k, g_norm.weight, g_norm.bias; pre [6, cap, C] (planes
// Γ (hi), α, β, k̃, v written; plane 5 = o, written by wkv7_chunk_state); gk [5, cap, C] (planes rg, ag, bg, kg, Γ's lo);
// bon [cap, H].
// Dispatch: one workgroup of D threads per (token, head), 2-D grid; thread j owns channel h·D + j.
// Runtime dims: C, ONE = 1.0. Defines: D, CH, FIRST, FUSE_NORM. All arithmetic f32; the log-decay sums load 8 tokens at a time.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(3) var<storage, read_write> vfirst: array<f32>; // [N, C]
@group(0) @binding(4) var<storage, read> vmix: array<f32>;        // [N, C]
@group(0) @binding(5) var<storage, read> params: array<f32>;      // [5, C]
@group(0) @binding(6) var<storage, read_write> pre: array<f32>;   // [6, cap, C]
@group(0) @binding(7) var<storage, read_write> gk: array<f32>;    // [5, cap, C]
@group(0) @binding(8) var<storage, read_write> bon: array<f32>;   // [cap, H]
@group(0) @binding(9) var<uniform> dims: vec4f;                   // C, 1.0

#include "rwkv7_red.wgsl"
#include "wkv7_chan.wgsl"
#include "wkv7_token.wgsl"



// a + w for a = (hi, lo), an unevaluated sum: TwoSum's rounding error of hi + w goes into lo. `one` is 1.0 read from
// the dims uniform: multiplied into the intermediates, it keeps shader compilers (which may treat these additions as
// associative) from folding the error term to zero.
fn add2(a: vec2f, w: f32, one: f32) -> vec2f {
  let s = (a.x + w) * one;
  let bb = (s - a.x) * one;
  let err = (a.x - (s - bb) * one) + (w - bb);
  return vec2f(s, a.y + err);
}

// Σ_{s=lo..hi−1} w_s of channel c in token order as (hi, lo) (compensated; 8 independent loads per round).
fn wsum(lo: u32, hi: u32, c: u32, C: u32, plane: u32, one: f32) -> vec2f {
  var acc = vec2f(0.0);
  var s = lo;
  for (; s + 8u <= hi; s += 8u) {
    var w: array<f32, 8>;
    for (var q = 0u; q < 8u; q++) { w[q] = proj[plane + (s + q) * C + c]; }
    for (var q = 0u; q < 8u; q++) { acc = add2(acc, w[q], one); }
  }
  for (; s < hi; s++) { acc = add2(acc, proj[plane + s * C + c], one); }
  return acc;
}

// e^{x.hi + x.lo} as e^{hi}·e^{lo}: the lo part is not lost to hi's rounding
fn exp2f(x: vec2f) -> f32 { return exp(x.x) * exp(x.y); }

@compute @workgroup_size(D)
fn wkv7_chunk_prep(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = u32(dims.x);
  let H = C / D;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * H) { return; }
  let t = idx / H;
  let h = idx % H;
  let cu = cursor(seq_of(t));
  let i = (t - cu.start) % CH;
  let cs = t - i;
  let ce = min(cs + CH, cu.start + cu.len);
  let j = l.x;
  let c = h * D + j;
  let plane = step.cap * C;
  let tc = t * C + c;
  let ti = token_inputs(tc, c, C, plane, j);
  let r = ti.r;
  let a = ti.a;
  let v = ti.v;
  let kt = ti.kt;
  let kn = ti.kn;
  let beta = kn * a;
  let one = dims.y;
  let gprev = wsum(cs, t, c, C, plane, one);
  let G = add2(gprev, proj[plane + tc], one);
  let sfx = wsum(t + 1u, ce, c, C, plane, one);
  pre[tc] = G.x;
  gk[4u * plane + tc] = G.y;
  pre[plane + tc] = -kn;
  pre[2u * plane + tc] = beta;
  pre[3u * plane + tc] = kt;
  pre[4u * plane + tc] = v;
  gk[tc] = r * exp2f(G);
  gk[plane + tc] = -kn * exp2f(gprev);
  let e = exp2f(sfx);
  gk[2u * plane + tc] = beta * e;
  gk[3u * plane + tc] = kt * e;
  if (j == 0u) { bon[t * H + h] = ti.bonus; }
}
