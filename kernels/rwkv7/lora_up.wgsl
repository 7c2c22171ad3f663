// lora_up: RWKV7's LoRA up-projections and gate activations for every token of the step at once (the unfused
// prologue of wkv7_lora, for long prefill steps): from l = lora[t] (R = RW + RA + RG + RV columns),
//   proj[1] = −e^{−0.5}·σ(w0 + l_w·W2ᵀ)   proj[4] = σ(a0 + l_a·A2ᵀ)   proj[5] = l_g·G2ᵀ   vmix = σ(v0 + l_v·V2ᵀ) (not FIRST)
// Bindings: step uniform; lora [N, R]; W [R, C] packed (WDT), the transposed up-projections stacked;
// params [8, C] (w0, a0, v0 at planes 5, 6, 7); proj [6, cap, C] (planes 1, 4, 5 written); vmix [N, C].
// Dispatch: one thread per (t, c), 64 per workgroup, 2-D grid. Runtime dims: C, RW, RA. Defines: R, RG, FIRST, WDT.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> lora: array<f32>;        // [N, R]
@group(0) @binding(2) var<storage, read> W: array<u32>;           // [R, C] packed
@group(0) @binding(3) var<storage, read> params: array<f32>;      // [8, C]
@group(0) @binding(4) var<storage, read_write> proj: array<f32>;  // [6, cap, C]
@group(0) @binding(5) var<storage, read_write> vmix: array<f32>;  // [N, C]
@group(0) @binding(6) var<uniform> dims: vec4u;                   // C, RW, RA

fn up(t: u32, i0: u32, i1: u32, c: u32, C: u32) -> f32 {
  var s = 0.0;
  let odd = (c & 1u) == 1u;
  for (var i = i0; i < i1; i++) {
    let p = wpair((i * C + c) >> 1u);
    s += lora[t * R + i] * select(p.x, p.y, odd);
  }
  return s;
}

@compute @workgroup_size(64)
fn lora_up(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let RW = dims.y;
  let RA = dims.z;
  let i = gid.x + gid.y * ng.x * 64u;
  if (i >= step.n * C) { return; }
  let t = i / C;
  let c = i % C;
  let plane = step.cap * C;
  proj[plane + i] = -0.6065306597126334 * sigmoid(up(t, 0u, RW, c, C) + params[5u * C + c]);
  proj[4u * plane + i] = sigmoid(up(t, RW, RW + RA, c, C) + params[6u * C + c]);
  proj[5u * plane + i] = up(t, RW + RA, RW + RA + RG, c, C);
  if (!FIRST) { vmix[i] = sigmoid(up(t, RW + RA + RG, R, c, C) + params[7u * C + c]); }
}
