// Shared by the delta-rule kernels (after common.wgsl): the q/k feature activation QK_ACT (0 none, 1 silu, 2 relu,
// 3 elu + 1), spec-deltanet-attention-qwen3next.md §1.
fn qk_act(x: f32) -> f32 {
  if (QK_ACT == 1u) { return x * sigmoid(x); }
  if (QK_ACT == 2u) { return max(x, 0.0); }
  if (QK_ACT == 3u) { if (x > 0.0) { return x + 1.0; } return exp(x); }
  return x;
}
