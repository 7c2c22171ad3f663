// rwkv7_gemv.wgsl: what rwkv7_proj and rwkv7_proj_ln share — loads of the four weight bindings (Wr, Wk, Wv, Wl,
// declared by the including kernel as array<vec4u>), the 16-byte unit's dot product, the segment table in dims.

// UNROLL units of weight binding b (0 Wr, 1 Wk, 2 Wv, 3 Wl) from unit i, TPR apart
fn load_batch(b: u32, i: u32) -> array<vec4u, UNROLL> {
  var w: array<vec4u, UNROLL>;
  switch b {
    case 0u: { for (var k = 0u; k < UNROLL; k++) { w[k] = Wr[i + k * TPR]; } }
    case 1u: { for (var k = 0u; k < UNROLL; k++) { w[k] = Wk[i + k * TPR]; } }
    case 2u: { for (var k = 0u; k < UNROLL; k++) { w[k] = Wv[i + k * TPR]; } }
    default: { for (var k = 0u; k < UNROLL; k++) { w[k] = Wl[i + k * TPR]; } }
  }
  return w;
}

fn load_one(b: u32, i: u32) -> vec4u {
  switch b {
    case 0u: { return Wr[i]; }
    case 1u: { return Wk[i]; }
    case 2u: { return Wv[i]; }
    default: { return Wl[i]; }
  }
}

// A weight unit times its x elements: a = elements 0..3, b = 4..7 (f32 weights: a only).
fn wdot(w: vec4u, a: vec4f, b: vec4f) -> f32 {
#if W_F32
  return dot(bitcast<vec4f>(w), a);
#else
#if W_F16
  let w0 = unpack2x16float(w.x); let w1 = unpack2x16float(w.y);
  let w2 = unpack2x16float(w.z); let w3 = unpack2x16float(w.w);
  return dot(vec4f(w0, w1), a) + dot(vec4f(w2, w3), b);
#else
  let lo = bitcast<vec4f>(w << vec4u(16u));            // elements 0, 2, 4, 6
  let hi = bitcast<vec4f>(w & vec4u(0xffff0000u));     // elements 1, 3, 5, 7
  return dot(vec4f(lo.x, hi.x, lo.y, hi.y), a) + dot(vec4f(lo.z, hi.z, lo.w, hi.w), b);
#endif
#endif
}

// vec4f units of x per weight unit
#if W_F32
const XPU = 1u;
#else
const XPU = 2u;
#endif

fn seg_end(s: u32) -> u32 {
  if (s < 4u) { return dims[1][s]; }
  return dims[2][s - 4u];
}

// Segment s's geometry: rows, x plane (= proj plane for r, k, v), first row among the stacked LoRA rows.
struct Seg { len: u32, xp: u32, lofs: u32 }

fn segment(s: u32, C: u32) -> Seg {
  let RW = dims[3].x;
  let RA = dims[3].y;
  let RG = dims[3].z;
  switch s {
    case 1u: { return Seg(C, 2u, 0u); }
    case 2u: { return Seg(C, 3u, 0u); }
    case 3u: { return Seg(RW, 1u, 0u); }
    case 4u: { return Seg(RA, 4u, RW); }
    case 5u: { return Seg(RG, 5u, RW + RA); }
    case 6u: { return Seg(dims[3].w, 3u, RW + RA + RG); }
    default: { return Seg(C, 0u, 0u); }
  }
}
