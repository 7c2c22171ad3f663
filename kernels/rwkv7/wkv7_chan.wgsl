// wkv7_chan.wgsl: the time-mix channel math every wkv7 kernel shares (wkv7_recurrent, wkv7_chunk_prep, wkv7_lora);
// the includer defines FUSE_NORM.

// torch.lerp(v, vf, m) as PyTorch evaluates it (the form depends on |m|).
fn lerp_v(v: f32, vf: f32, m: f32) -> f32 {
  if (abs(m) < 0.5) { return v + m * (vf - v); }
  return vf - (vf - v) * (1.0 - m);
}

// 1/‖κ‖ from Σκ² as fla computes it: fused l2-norm (+1e-6 inside the root) or F.normalize (max(‖κ‖, 1e-12)).
fn knorm(sumsq: f32) -> f32 {
  if (FUSE_NORM) { return inverseSqrt(sumsq + 1e-6); }
  return 1.0 / max(sqrt(sumsq), 1e-12);
}
