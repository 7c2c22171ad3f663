// lora_up: RWKV7's LoRA up-projections and gate activations for every token of the step at once (the unfused
// prologue of wkv7_lora, for long prefill steps): from l = lora[t] (R = RW + RA + RG + RV columns),
//   proj[1] = −e^{−0.5}·σ(w0 + l_w·W2ᵀ)   proj[4] = σ(a0 + l_a·A2ᵀ)   proj[5] = l_g·G2ᵀ   vmix = σ(v0 + l_v·V2ᵀ) (not FIRST)
// Bindings: step uniform; lora [N, R]; W [R, C] packed (WDT), the transposed up-projections stacked;
// params [8, C] (w0, a0, v0 at planes 5, 6, 7); proj [6, cap, C] (planes 1, 4, 5 written); vmix [N, C].
// Dispatch: one thread per (channel c, block of 4 tokens), 64 per workgroup, 2-D grid: each weight element loaded
// is used for the 4 tokens (rows past the step's last are clamped, computed and not written).
// Runtime dims: C, RW, RA. Defines: R, RG, FIRST, WDT.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> lora: array<f32>;        // [N, R]
@group(0) @binding(2) var<storage, read> W: array<u32>;           // [R, C] packed
@group(0) @binding(3) var<storage, read> params: array<f32>;      // [8, C]
@group(0) @binding(4) var<storage, read_write> proj: array<f32>;  // [6, cap, C]
@group(0) @binding(5) var<storage, read_write> vmix: array<f32>;  // [N, C]
@group(0) @binding(6) var<uniform> dims: vec4u;                   // C, RW, RA

// Σ_{i in [i0, i1)} lora[t_k, i]·W[i, c] for the four tokens t_k of the block (row offsets tr[k] = t_k·R)
fn up(tr: vec4u, i0: u32, i1: u32, c: u32, C: u32) -> vec4f {
  var s = vec4f(0.0);
  let odd = (c & 1u) == 1u;
  for (var i = i0; i < i1; i++) {
    let p = wpair((i * C + c) >> 1u);
    let w = select(p.x, p.y, odd);
    s += vec4f(lora[tr.x + i], lora[tr.y + i], lora[tr.z + i], lora[tr.w + i]) * w;
  }
  return s;
}

@compute @workgroup_size(64)
fn lora_up(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let RW = dims.y;
  let RA = dims.z;
  let i = gid.x + gid.y * ng.x * 64u;
  let blocks = (step.n + 3u) / 4u;
  if (i >= blocks * C) { return; }
  let t0 = (i / C) * 4u;
  let c = i % C;
  let plane = step.cap * C;
  let tr = min(vec4u(t0) + vec4u(0u, 1u, 2u, 3u), vec4u(step.n - 1u)) * R;
  let w = up(tr, 0u, RW, c, C);
  let a = up(tr, RW, RW + RA, c, C);
  let g = up(tr, RW + RA, RW + RA + RG, c, C);
  var v = vec4f(0.0);
  if (!FIRST) { v = up(tr, RW + RA + RG, R, c, C); }
  for (var k = 0u; k < 4u; k++) {
    let t = t0 + k;
    if (t < step.n) {
      let o = t * C + c;
      proj[plane + o] = -0.6065306597126334 * sigmoid(w[k] + params[5u * C + c]);
      proj[4u * plane + o] = sigmoid(a[k] + params[6u * C + c]);
      proj[5u * plane + o] = g[k];
      if (!FIRST) { vmix[o] = sigmoid(v[k] + params[7u * C + c]); }
    }
  }
}
