// Weight load units of the fused expert GEMVs (moe_gu, moe_down: `#include "moe_unit.wgsl"`).
// A unit is what one lane loads at once from a row-major weight row:
//   VEC: 16 bytes (vec4<u32>): 16 F8_E4M3, 8 bf16/f16 or 4 f32 (EPU elements; the row length a multiple of EPU and,
//        for fp8, the scale-block width too);
//   else one quad of 4 elements: u32 (fp8), vec2<u32> (bf16/f16), vec4<u32> (f32).
// wdot(w, xb, lq) = Σ of the unit's elements times the EPU / 4 input quads xin(xb, lq), xin(xb, lq + 1), … (the
// including file's `fn xin(row base, quad) -> vec4f`); for fp8 it is 2⁻⁸ times that sum before the block scale (the including file multiplies the
// unit's scale by 256 = FP8_UNSCALE). fp8 decode: each byte s.eeee.mmm becomes the f16 s.0eeee.mmm0000000, whose
// value is exactly 2⁻⁸ times the e4m3 value for every byte including the subnormals (f16 exponent 0; f16 → f32
// conversion is exact); 0x7f/0xff (e4m3 NaN) decode to ±480, as in wquad.wgsl. Defines: VEC, W_FP8, W_F16, W_F32.

#if VEC
alias WUNIT = vec4u;
#if W_FP8
const EPU = 16u;
#else
#if W_F32
const EPU = 4u;
#else
const EPU = 8u;
#endif
#endif
#else
const EPU = 4u;
#if W_FP8
alias WUNIT = u32;
#else
#if W_F32
alias WUNIT = vec4u;
#else
alias WUNIT = vec2u;
#endif
#endif
#endif

const FP8_UNSCALE = 256.0;

// bytes 0 and 2 of t (after t >> 8: bytes 1 and 3) as f16 values 2⁻⁸ × e4m3
fn f8pair(t: u32) -> vec2f {
  let b = t & 0x00ff00ffu;
  return unpack2x16float(((b & 0x007f007fu) << 7u) | ((b & 0x00800080u) << 8u));
}

// the 4 fp8 of one word in byte order, 2⁻⁸ × e4m3
fn f8quad(w: u32) -> vec4f {
  let e = f8pair(w);
  let o = f8pair(w >> 8u);
  return vec4f(e.x, o.x, e.y, o.y);
}

fn hquad(w: vec2u) -> vec4f {
#if W_F16
  return vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
#else
  return vec4f(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u));
#endif
}

fn wdot(w: WUNIT, xb: u32, lq: u32) -> f32 {
#if W_FP8
#if VEC
  return dot(f8quad(w.x), xin(xb, lq)) + dot(f8quad(w.y), xin(xb, lq + 1u)) + dot(f8quad(w.z), xin(xb, lq + 2u)) + dot(f8quad(w.w), xin(xb, lq + 3u));
#else
  return dot(f8quad(w), xin(xb, lq));
#endif
#else
#if W_F32
  return dot(bitcast<vec4f>(w), xin(xb, lq));
#else
#if VEC
  return dot(hquad(w.xy), xin(xb, lq)) + dot(hquad(w.zw), xin(xb, lq + 1u));
#else
  return dot(hquad(w), xin(xb, lq));
#endif
#endif
#endif
}


#if MOE_GEMV
// The fused expert GEMVs' (moe_gu, moe_down: MOE_GEMV) fp8 block scales. Needs in the including file: S, Ss (the
// routed / shared scales), dims with the scale layouts of W and Ws in dims[2] / dims[3] (RP, SRP, BR, SC) and
// dims[4].xy = their BC (COL_POW2: log2 of BC / EPU).

// the first scale of row g of W or (sh) Ws (its scale row × SC), once per lane outside the unit loop; 0 unless fp8
fn srow_of(sh: bool, g: u32) -> u32 {
#if W_FP8
  let fq = select(dims[2], dims[3], sh);
  return ((g / fq.x) * fq.y + (g % fq.x) / fq.z) * fq.w;
#else
  return 0u;
#endif
}

// the block scale of unit u of the row whose first scale is at sr (× FP8_UNSCALE); 1 unless fp8
fn wscale(sh: bool, sr: u32, u: u32) -> f32 {
#if W_FP8
#if COL_POW2
  let i = sr + (u >> select(dims[4].x, dims[4].y, sh));   // units per scale block a power of two: its log2
#else
  let i = sr + (u * EPU) / select(dims[4].x, dims[4].y, sh);
#endif
  if (sh) { return Ss[i] * FP8_UNSCALE; }
  return S[i] * FP8_UNSCALE;
#else
  return 1.0;
#endif
}

#endif

// lane_sum(li, sg, TPR, v)[r] = Σ of v[r] (r < WSR) over the thread's lane group of TPR lanes (a power of two ≤ WG, the
// groups laid out consecutively; TPR = WG: the whole workgroup), for every lane of the group (li = local invocation
// index, sg = the subgroup size, unused without SG_RED): subgroup butterflies (TPR < sg) or adds, plus a pass over the
// group's subgroups through workgroup memory when TPR > sg (SG_RED), else a workgroup-memory tree. From uniform control
// flow (barriers inside, the first guarding wsum's reuse: callable more than once). Defines: WSR, WG, SG_RED, SGS.
#if SG_RED
var<workgroup> wsum: array<f32, (WG / SGS) * WSR>;
#else
var<workgroup> wsum: array<f32, WG * WSR>;
#endif

fn lane_sum(li: u32, sg: u32, TPR: u32, v: array<f32, WSR>) -> array<f32, WSR> {
  var s = v;
#if SG_RED
  if (TPR < sg) {
    for (var h = TPR / 2u; h > 0u; h >>= 1u) {
      for (var r = 0u; r < WSR; r++) { s[r] += subgroupShuffleXor(s[r], h); }
    }
  } else {
    for (var r = 0u; r < WSR; r++) { s[r] = subgroupAdd(s[r]); }
  }
  if (TPR > sg) {
    workgroupBarrier();
    if (li % sg == 0u) { for (var r = 0u; r < WSR; r++) { wsum[(li / sg) * WSR + r] = s[r]; } }
    workgroupBarrier();
    let first = (li / TPR) * (TPR / sg);
    for (var r = 0u; r < WSR; r++) {
      var t = 0.0;
      for (var j = 0u; j < TPR / sg; j++) { t += wsum[(first + j) * WSR + r]; }
      s[r] = t;
    }
  }
#else
  let lane = li % TPR;
  workgroupBarrier();
  for (var r = 0u; r < WSR; r++) { wsum[li * WSR + r] = s[r]; }
  workgroupBarrier();
  for (var h = TPR / 2u; h > 0u; h >>= 1u) {
    if (lane < h) {
      for (var r = 0u; r < WSR; r++) { wsum[li * WSR + r] += wsum[(li + h) * WSR + r]; }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < WSR; r++) { s[r] = wsum[(li - lane) * WSR + r]; }
#endif
  return s;
}
