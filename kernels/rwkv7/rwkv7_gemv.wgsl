// rwkv7_gemv.wgsl: what rwkv7_proj and rwkv7_proj_ln share — loads of the four weight bindings (Wr, Wk, Wv, Wl,
// declared by the including kernel as array<vec4u>), the 16-byte unit's dot product, the segment table in dims, the
// lane group's reduction (defines WG, TPR, RB, SG_RED, SGS; the entry point passes sg, 1 without SG_RED).

#if SG_RED
var<workgroup> red: array<f32, (WG / SGS) * RB>;
#else
var<workgroup> red: array<f32, WG * RB>;
#endif

// The RB sums of each lane group (TPR lanes, lane = li % TPR) added over the group; every lane gets them. SG_RED:
// subgroupShuffleXor / subgroupAdd, then workgroup memory across the subgroups when TPR > sg; else a workgroup tree.
// Every thread must call it; red may be written again only after a barrier.
fn group_sum(a: array<f32, RB>, li: u32, sg: u32) -> array<f32, RB> {
  var acc = a;
  let lane = li % TPR;
#if SG_RED
  if (TPR < sg) {
    for (var st = TPR / 2u; st > 0u; st >>= 1u) {
      for (var r = 0u; r < RB; r++) { acc[r] += subgroupShuffleXor(acc[r], st); }
    }
  } else {
    for (var r = 0u; r < RB; r++) { acc[r] = subgroupAdd(acc[r]); }
  }
  if (TPR > sg) {
    let si = li / sg;
    if (li % sg == 0u) { for (var r = 0u; r < RB; r++) { red[si * RB + r] = acc[r]; } }
    workgroupBarrier();
    let first = (li / TPR) * (TPR / sg);
    for (var r = 0u; r < RB; r++) {
      var v = 0.0;
      for (var j = 0u; j < TPR / sg; j++) { v += red[(first + j) * RB + r]; }
      acc[r] = v;
    }
  }
#else
  for (var r = 0u; r < RB; r++) { red[li * RB + r] = acc[r]; }
  workgroupBarrier();
  for (var st = TPR / 2u; st > 0u; st >>= 1u) {
    if (lane < st) {
      for (var r = 0u; r < RB; r++) { red[li * RB + r] += red[(li + st) * RB + r]; }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < RB; r++) { acc[r] = red[(li - lane) * RB + r]; }
#endif
  return acc;
}

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
