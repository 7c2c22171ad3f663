// wkv7_chunk_prep: first pass of the chunked RWKV7 prefill (wkv7_chunk.ts; spec-rwkv7-gla-abc.md §1.3 steps 5–8).
// Chunks of CH tokens start at each sequence's first token. Per token t and channel c of head h, as wkv7_recurrent:
//   v ← lerp(v, v_first, m) (FIRST: v_first := v);  κ̂ = norm(k⊙k_k);  k̃ = k⊙(1 + (a−1)⊙k_a);  bonus = Σ r⊙k̃⊙r_k
// and, with Γ_t = Σ_{s = chunk start..t} w_s the per-channel cumulative log-decay inside the chunk (Γ ≤ 0):
//   α = −κ̂,  β = κ̂⊙a,  rg = r⊙e^{Γ_t},  ag = α⊙e^{Γ_{t−1}} (Γ before the chunk's first token = 0),
//   bg = β⊙e^{Γ_n − Γ_t},  kg = k̃⊙e^{Γ_n − Γ_t}  (n = the chunk's last token; Γ_n − Γ_t summed backwards, not subtracted).
// Only exponentials of non-positive numbers are taken: no overflow whatever the decays.
// Bindings: step uniform; stepmeta u32 (cursors); proj [6, cap, C] planes r,w,k,v,a,g; vfirst [N, C] (written if FIRST);
// vmix [N, C]; params [5, C] = k_k, k_a, r_k, g_norm.weight, g_norm.bias; pre [6, cap, C] (planes Γ, α, β, k̃, v
// written; plane 5 = o, written by wkv7_chunk_state); gk [4, cap, C] (planes rg, ag, bg, kg); bon [cap, H].
// Dispatch: (H, B, ⌈max len / CH⌉) workgroups of D threads; thread j owns channel h·D + j and walks the chunk's tokens.
// Runtime dims: C. Defines: D, CH, FIRST, FUSE_NORM. All arithmetic f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(3) var<storage, read_write> vfirst: array<f32>; // [N, C]
@group(0) @binding(4) var<storage, read> vmix: array<f32>;        // [N, C]
@group(0) @binding(5) var<storage, read> params: array<f32>;      // [5, C]
@group(0) @binding(6) var<storage, read_write> pre: array<f32>;   // [6, cap, C]
@group(0) @binding(7) var<storage, read_write> gk: array<f32>;    // [4, cap, C]
@group(0) @binding(8) var<storage, read_write> bon: array<f32>;   // [cap, H]
@group(0) @binding(9) var<uniform> dims: vec4f;                   // C

var<workgroup> red: array<vec2f, D>;

fn wg_sum2(v: vec2f, j: u32) -> vec2f {
  red[j] = v;
  workgroupBarrier();
  for (var s = D / 2u; s > 0u; s >>= 1u) {
    if (j < s) { red[j] += red[j + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(D)
fn wkv7_chunk_prep(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let C = u32(dims.x);
  let H = C / D;
  let h = wg.x;
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let cu = cursor(seq);
  let end = cu.start + cu.len;
  let cs = cu.start + wg.z * CH;
  if (cs >= end) { return; }
  let n = min(CH, end - cs);
  let j = l.x;
  let c = h * D + j;
  let plane = step.cap * C;
  var G = 0.0;
  for (var t = cs; t < cs + n; t++) {
    let tc = t * C + c;
    let r = proj[tc];
    let k = proj[2u * plane + tc];
    var v = proj[3u * plane + tc];
    let a = proj[4u * plane + tc];
    if (FIRST) {
      vfirst[tc] = v;
    } else {
      let m = vmix[tc];
      let vf = vfirst[tc];
      if (abs(m) < 0.5) { v = v + m * (vf - v); } else { v = vf - (vf - v) * (1.0 - m); }   // torch.lerp
    }
    let kk = k * params[c];
    let kt = k * (1.0 + (a - 1.0) * params[C + c]);
    let sums = wg_sum2(vec2f(kk * kk, r * kt * params[2u * C + c]), j);
    var inv: f32;
    if (FUSE_NORM) { inv = inverseSqrt(sums.x + 1e-6); } else { inv = 1.0 / max(sqrt(sums.x), 1e-12); }
    let kn = kk * inv;
    gk[plane + tc] = -kn * exp(G);
    G += proj[plane + tc];
    pre[tc] = G;
    pre[plane + tc] = -kn;
    pre[2u * plane + tc] = kn * a;
    pre[3u * plane + tc] = kt;
    pre[4u * plane + tc] = v;
    gk[tc] = r * exp(G);
    if (j == 0u) { bon[t * H + h] = sums.y; }
  }
  var sfx = 0.0;   // Σ of w over the tokens after t in the chunk
  for (var i = n; i > 0u; i--) {
    let tc = (cs + i - 1u) * C + c;
    let e = exp(sfx);
    gk[2u * plane + tc] = pre[2u * plane + tc] * e;
    gk[3u * plane + tc] = pre[3u * plane + tc] * e;
    sfx += proj[plane + tc];
  }
}
