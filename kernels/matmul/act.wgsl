// Activation fused at the end of a matmul, chosen by the ACT define (values as ACT in matmul.ref.ts).
fn act(v: f32) -> f32 {
  if (ACT == 1u) { return tanh_stable(v); }
  if (ACT == 2u) { return sigmoid(v); }
  if (ACT == 3u) { let r = max(v, 0.0); return r * r; }
  if (ACT == 4u) { return -0.6065306597126334 * sigmoid(v); }   // RWKV7 log-decay −e^{−0.5}·σ(v)
  return v;
}
