// Shared by every kernel: the per-step uniform and bf16/f16 weight unpacking.

// One packed step: n tokens of b sequences; k kept rows (logits); cap = activation row capacity
// (plane stride of planar activations); *_off index the u32 `meta` buffer:
// ids[n] at ids_off, sequence of each token [n] at seq_off, cursors (slot, start, len, pos)[b] at cur_off (pos = tokens already in the slot), kept token rows [k] at keep_off.
struct Step { n: u32, k: u32, b: u32, cap: u32, ids_off: u32, seq_off: u32, cur_off: u32, keep_off: u32 }

// Weight element pair p (elements 2p, 2p+1) of the weight binding `W`; WDT: 1 = f32, 2 = bf16, 3 = f16.
#if WDT
fn wpair(p: u32) -> vec2f {
#if W_F32
  return vec2f(bitcast<f32>(W[2u * p]), bitcast<f32>(W[2u * p + 1u]));
#else
#if W_F16
  return unpack2x16float(W[p]);
#else
  let u = W[p];
  return vec2f(bitcast<f32>(u << 16u), bitcast<f32>(u & 0xffff0000u));
#endif
#endif
}
#endif

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

// tanh without the inf/inf of the naive exp form
fn tanh_stable(x: f32) -> f32 {
  let t = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - t) / (1.0 + t);
}
