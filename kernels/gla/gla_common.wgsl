// Shared by the GLA kernels (after common.wgsl): fla's q/k feature map FMAP (0 identity, 1 relu, 2 sigmoid,
// 3 logsigmoid, 4 swish, 5 squared relu), spec-rwkv7-gla-abc.md.
fn fmap(x: f32) -> f32 {
  if (FMAP == 1) { return max(x, 0.0); }
  if (FMAP == 2) { return sigmoid(x); }
  if (FMAP == 3) { return logsigmoid(x); }
  if (FMAP == 4) { return x * sigmoid(x); }
  if (FMAP == 5) { let r = max(x, 0.0); return r * r; }
  return x;
}
