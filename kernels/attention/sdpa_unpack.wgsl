// Shared by sdpa_split.wgsl and sdpa_split_kp.wgsl: the KV cache's 16-byte units as vec4f. The includer defines
// EPU (vec4f a unit: 1 for an f32 cache, 2 for 16-bit pairs) and KV16 / KV_F16 (defines).
// f16 units unpack as elements 0..3, 4..7; bf16 as the even and the odd elements (q and acc are kept in the same
// order and put back in element order when written).

// a unit as vec4f: one for f32, two for 16-bit (f16: elements 0..3, 4..7; bf16: even, odd elements)
fn unpk(w: vec4u) -> array<vec4f, EPU> {
#if KV16
#if KV_F16
  return array<vec4f, EPU>(vec4f(unpack2x16float(w.x), unpack2x16float(w.y)), vec4f(unpack2x16float(w.z), unpack2x16float(w.w)));
#else
  return array<vec4f, EPU>(bitcast<vec4f>(w << vec4u(16u)), bitcast<vec4f>(w & vec4u(0xffff0000u)));
#endif
#else
  return array<vec4f, EPU>(bitcast<vec4f>(w));
#endif
}

// element-ordered vec4s (a: elements 0..3, b: 4..7) in unpk's order, and back
fn to_unit_order(a: vec4f, b: vec4f) -> array<vec4f, 2> {
#if KV_F16
  return array<vec4f, 2>(a, b);
#else
  return array<vec4f, 2>(vec4f(a.x, a.z, b.x, b.z), vec4f(a.y, a.w, b.y, b.w));
#endif
}
fn to_element_order(e: vec4f, o: vec4f) -> array<vec4f, 2> {
#if KV_F16
  return array<vec4f, 2>(e, o);
#else
  return array<vec4f, 2>(vec4f(e.x, o.x, e.y, o.y), vec4f(e.z, o.z, e.w, o.w));
#endif
}
