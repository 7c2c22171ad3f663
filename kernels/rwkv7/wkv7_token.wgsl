// wkv7_token.wgsl: one token's channel inputs as wkv7_recurrent and wkv7_chunk_prep read them (spec-rwkv7-gla-abc.md
// §1.3 steps 5–7), for kernels of D threads a head (thread j: channel c) that bind proj [6, cap, C], vfirst, vmix
// [N, C] and params [≥ 3, C] under those names and include rwkv7_red.wgsl and wkv7_chan.wgsl (defines FIRST,
// FUSE_NORM). FIRST writes vfirst ← v; else v ← lerp(v, v_first, vmix). Every thread must call it (a workgroup sum).
struct TokenInputs { r: f32, a: f32, v: f32, kn: f32, kt: f32, bonus: f32 }   // bonus: Σ r⊙k̃⊙r_k over the head

fn token_inputs(tc: u32, c: u32, C: u32, plane: u32, j: u32) -> TokenInputs {
  let r = proj[tc];
  let k = proj[2u * plane + tc];
  var v = proj[3u * plane + tc];
  let a = proj[4u * plane + tc];
  if (FIRST) {
    vfirst[tc] = v;
  } else {
    v = lerp_v(v, vfirst[tc], vmix[tc]);
  }
  let kk = k * params[c];
  let kt = k * (1.0 + (a - 1.0) * params[C + c]);
  let sums = wg_sum2(vec2f(kk * kk, r * kt * params[2u * C + c]), j, 1u);
  return TokenInputs(r, a, v, kk * knorm(sums.x), kt, sums.y);
}
