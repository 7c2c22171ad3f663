// Shared by every kernel: the per-step uniform, the cursor decode of the step metadata, bf16/f16 weight unpacking
// and small math helpers.

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

// log(1 + x) accurate for small x (WGSL has no log1p)
fn log1p_(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log(u) * x / (u - 1.0);
}

fn logsigmoid(x: f32) -> f32 { return min(x, 0.0) - log1p_(exp(-abs(x))); }

fn softplus(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  return log(1.0 + exp(x));
}

// The step metadata, for kernels that bind `stepmeta` (HAS_STEPMETA is set by the preprocessor when they do).
#if HAS_STEPMETA
// A sequence of the step: its state slot, token range [start, start + len) and pos (tokens its slot already holds).
struct Cursor { slot: u32, start: u32, len: u32, pos: u32 }

fn cursor(s: u32) -> Cursor {
  let c = step.cur_off + 4u * s;
  return Cursor(stepmeta[c], stepmeta[c + 1u], stepmeta[c + 2u], stepmeta[c + 3u]);
}

// the sequence token t belongs to
fn seq_of(t: u32) -> u32 { return stepmeta[step.seq_off + t]; }

fn token_id(t: u32) -> u32 { return stepmeta[step.ids_off + t]; }

// the token row of kept row j
fn kept_row(j: u32) -> u32 { return stepmeta[step.keep_off + j]; }
#endif
