// The KV cache's layout, in one place for every kernel that appends to it (kv_store, rope_kv, matmul_gemv_rope):
// a cache is [slots, ctx, KV·D]; token t of the step goes to row cursor.pos + (t − cursor.start) of its sequence's
// slot. f32 caches hold one element a u32 word (bitcast); 16-bit caches (bf16: round to nearest even; f16:
// pack2x16float, core WGSL) pair elements (c, c + 1), c even, in one word, low half first.
// Needs common.wgsl and the stepmeta binding (cursor, seq_of). Defines: KV_F16 (16-bit pairs as f16, else bf16).

// position of token t in its sequence
fn kv_pos(t: u32) -> u32 {
  let cu = cursor(seq_of(t));
  return cu.pos + t - cu.start;
}

// first element of token t's row in a cache of ctx rows of W elements each
fn kv_row(t: u32, ctx: u32, W: u32) -> u32 {
  let cu = cursor(seq_of(t));
  return (cu.slot * ctx + cu.pos + t - cu.start) * W;
}

fn bf16_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}

// the 16-bit word of elements (a, b) = (c, c + 1)
fn kv_pack(a: f32, b: f32) -> u32 {
#if KV_F16
  return pack2x16float(vec2f(a, b));
#else
  return bf16_bits(a) | (bf16_bits(b) << 16u);
#endif
}
