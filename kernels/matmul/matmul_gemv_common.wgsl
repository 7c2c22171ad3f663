// What the decode GEMVs share (matmul_gemv_vec.wgsl, matmul_gemv_multi.wgsl; their headers say what the defines
// do): the load units and their unpacking, the register tile (CB columns × RB batch rows a lane), the lane's walk
// over its units, and the reduction over the TPR lanes of a lane group.
// The including kernel declares `x` (array<XUNIT>: storage, or workgroup memory), and `fn wunit(pc, c, i) -> WUNIT`:
// unit i of the W binding of part pc (a constant at each call) for column c. With NORM it also declares `gn`
// (array<XUNIT>, the norm weights): the tile then scales each W element by its norm weight.
// Defines used: WG, RB, CB, CV2, CV4, E, TS, UNROLL, VEC, SG_RED, SGS, ROW_LOOP, W_F32, W_F16, NORM.
#if VEC
alias XUNIT = vec4f;
alias WUNIT = vec4u;
#else
alias XUNIT = f32;
alias WUNIT = u32;
#endif

#if CV4
alias CV = vec4f;            // the CB columns of one batch row
#else
#if CV2
alias CV = vec2f;
#else
alias CV = f32;
#endif
#endif
const N = RB * CB;           // sums per lane
const M = N >> TS;           // sums per lane after the transposing steps
#if SG_RED
// M sums per (subgroup, low-bit class) when a group spans several subgroups
var<workgroup> red: array<f32, (WG / SGS) * N>;
#else
const RC = min(N, 16u);      // sums per pass of the workgroup-memory tree (≥ RB)
var<workgroup> red: array<f32, WG * RC>;
#endif

// The E weights of one unit, in element order.
fn wvals(w: WUNIT) -> array<f32, E> {
#if VEC
#if W_F32
  let f = bitcast<vec4f>(w);
  return array<f32, E>(f.x, f.y, f.z, f.w);
#else
#if W_F16
  let a = unpack2x16float(w.x); let b = unpack2x16float(w.y);
  let c = unpack2x16float(w.z); let d = unpack2x16float(w.w);
  return array<f32, E>(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
#else
  let lo = bitcast<vec4f>(w << vec4u(16u));            // elements 0, 2, 4, 6
  let hi = bitcast<vec4f>(w & vec4u(0xffff0000u));     // elements 1, 3, 5, 7
  return array<f32, E>(lo.x, hi.x, lo.y, hi.y, lo.z, hi.z, lo.w, hi.w);
#endif
#endif
#else
#if W_F32
  return array<f32, E>(bitcast<f32>(w));
#else
#if W_F16
  let p = unpack2x16float(w);
#else
  let p = vec2f(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
#endif
  return array<f32, E>(p.x, p.y);
#endif
#endif
}

// The E values under unit u of a vector laid out as x (XUNIT elements), starting at its element xr.
#if NORM
fn gvals(u: u32) -> array<f32, E> {
#if VEC
#if W_F32
  let a = gn[u];
  return array<f32, E>(a.x, a.y, a.z, a.w);
#else
  let a = gn[2u * u];
  let b = gn[2u * u + 1u];
  return array<f32, E>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
#endif
#else
#if W_F32
  return array<f32, E>(gn[u]);
#else
  return array<f32, E>(gn[2u * u], gn[2u * u + 1u]);
#endif
#endif
}
#endif

fn xvals(xr: u32, u: u32) -> array<f32, E> {
#if VEC
#if W_F32
  let a = x[xr + u];
  return array<f32, E>(a.x, a.y, a.z, a.w);
#else
  let a = x[xr + 2u * u];
  let b = x[xr + 2u * u + 1u];
  return array<f32, E>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
#endif
#else
#if W_F32
  return array<f32, E>(x[xr + u]);
#else
  return array<f32, E>(x[xr + 2u * u], x[xr + 2u * u + 1u]);
#endif
#endif
}

// The CB loaded units unpacked and transposed: element e of every column.
fn columns(w: array<WUNIT, CB>) -> array<CV, E> {
  var f: array<array<f32, E>, CB>;
  for (var c = 0u; c < CB; c++) { f[c] = wvals(w[c]); }
  var t: array<CV, E>;
  for (var e = 0u; e < E; e++) {
#if CV4
    t[e] = vec4f(f[0][e], f[1][e], f[2][e], f[3][e]);
#else
#if CV2
    t[e] = vec2f(f[0][e], f[1][e]);
#else
    t[e] = f[0][e];
#endif
#endif
  }
  return t;
}

// column c of a row's vector
fn col(v: CV, c: u32) -> f32 {
#if CV4
  return v[c];
#else
#if CV2
  return v[c];
#else
  return v;
#endif
#endif
}

// acc[r] (the CB columns of batch row r of the block xg) += t · x unit u of row r: E vector FMAs on one x load
fn tile_row(acc: ptr<function, array<CV, RB>>, t: array<CV, E>, xg: vec4u, u: u32, r: u32) {
  let xv = xvals(xg.x + min(xg.y + r, xg.z) * xg.w, u);
  var s = (*acc)[r];
  for (var e = 0u; e < E; e++) { s = fma(t[e], CV(xv[e]), s); }
  (*acc)[r] = s;
}

// every row of the block += the CB loaded W units (unpacked once and transposed to t[e], element e of every column;
// NORM: times the norm weight of element e, once for all RB rows)
fn tile(acc: ptr<function, array<CV, RB>>, w: array<WUNIT, CB>, xg: vec4u, u: u32) {
  var t = columns(w);
#if NORM
  let g = gvals(u);
  for (var e = 0u; e < E; e++) { t[e] *= g[e]; }
#endif
#if ROW_LOOP
  for (var r = 0u; r < RB; r++) { tile_row(acc, t, xg, u, r); }
#else
  // rows by explicit calls (RB a power of two ≤ 16): every acc index a constant once the call is inlined, with no
  // reliance on the driver unrolling a 16-trip loop whose body is E vector FMAs
  tile_row(acc, t, xg, u, 0u);
  if (RB > 1u) { tile_row(acc, t, xg, u, 1u); }
  if (RB > 2u) { tile_row(acc, t, xg, u, 2u); tile_row(acc, t, xg, u, 3u); }
  if (RB > 4u) {
    tile_row(acc, t, xg, u, 4u); tile_row(acc, t, xg, u, 5u); tile_row(acc, t, xg, u, 6u); tile_row(acc, t, xg, u, 7u);
  }
  if (RB > 8u) {
    tile_row(acc, t, xg, u, 8u); tile_row(acc, t, xg, u, 9u); tile_row(acc, t, xg, u, 10u); tile_row(acc, t, xg, u, 11u);
    tile_row(acc, t, xg, u, 12u); tile_row(acc, t, xg, u, 13u); tile_row(acc, t, xg, u, 14u); tile_row(acc, t, xg, u, 15u);
  }
#endif
}

// the lane's units lane, lane + TPR, … < U of part pc (a constant at every call) for the CB W rows starting at
// wb[c], UNROLL units in flight (their loads issued first)
fn accum(pc: u32, acc: ptr<function, array<CV, RB>>, wb: array<u32, CB>, xg: vec4u, lane: u32, TPR: u32, U: u32) {
  var u = lane;
  for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
    var wv: array<array<WUNIT, CB>, UNROLL>;
    for (var k = 0u; k < UNROLL; k++) {
      for (var c = 0u; c < CB; c++) { wv[k][c] = wunit(pc, c, wb[c] + u + k * TPR); }
    }
    for (var k = 0u; k < UNROLL; k++) { tile(acc, wv[k], xg, u + k * TPR); }
  }
  for (; u < U; u += TPR) {
    var w1: array<WUNIT, CB>;
    for (var c = 0u; c < CB; c++) { w1[c] = wunit(pc, c, wb[c] + u); }
    tile(acc, w1, xg, u);
  }
}

// first sum held by a lane whose low TS lane bits are b (after the transposing steps)
fn voff(b: u32) -> u32 {
  var o = 0u;
  for (var t = 0u; t < TS; t++) { o += ((b >> t) & 1u) * (N >> (t + 1u)); }
  return o;
}

// one transposing step at stride s (h = sums kept): the lane with the stride bit set keeps the upper half
fn transpose_step(acc: ptr<function, array<f32, N>>, lane: u32, s: u32, h: u32) {
  let hi = (lane & s) != 0u;
  for (var i = 0u; i < h; i++) {
    let keep = select((*acc)[i], (*acc)[i + h], hi);
    let send = select((*acc)[i + h], (*acc)[i], hi);
    (*acc)[i] = keep + subgroupShuffleXor(send, s);
  }
}

// Sum the N sums of each lane over its group of TPR lanes (li = lane + sub·TPR). Returns lb, the lane's low TS bits:
// afterwards slot i < M holds sum j = voff(lb) + i, the same in every lane of the group with those low bits.
#if SG_RED
fn reduce(acc: ptr<function, array<f32, N>>, li: u32, lane: u32, sub: u32, TPR: u32, sg: u32) -> u32 {
  // transposing steps: strides 1, 2, 4, each halving the sums a lane carries
  if (TS > 0u) { transpose_step(acc, lane, 1u, N / 2u); }
  if (TS > 1u) { transpose_step(acc, lane, 2u, N / 4u); }
  if (TS > 2u) { transpose_step(acc, lane, 4u, N / 8u); }
  let span = min(TPR, sg);
  for (var s = 1u << TS; s < span; s <<= 1u) {
    for (var i = 0u; i < M; i++) { (*acc)[i] += subgroupShuffleXor((*acc)[i], s); }
  }
  let lb = lane & ((1u << TS) - 1u);
  if (TPR > sg) {
    // sum the TPR / sg subgroups of each group through workgroup memory
    let si = li / sg;
    if ((li % sg) >> TS == 0u) { for (var i = 0u; i < M; i++) { red[((si << TS) | lb) * M + i] = (*acc)[i]; } }
    workgroupBarrier();
    let f0 = sub * (TPR / sg);
    for (var i = 0u; i < M; i++) {
      var v = 0.0;
      for (var j = 0u; j < TPR / sg; j++) { v += red[(((f0 + j) << TS) | lb) * M + i]; }
      (*acc)[i] = v;
    }
  }
  return lb;
}
#else
fn reduce(acc: ptr<function, array<f32, N>>, li: u32, lane: u32, sub: u32, TPR: u32, sg: u32) -> u32 {
  // a workgroup-memory tree in chunks of RC sums (sg unused: the kernel's entry has no subgroup size)
  for (var q = 0u; q < N / RC; q++) {
    for (var e = 0u; e < RC; e++) { red[li * RC + e] = (*acc)[q * RC + e]; }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var e = 0u; e < RC; e++) { red[li * RC + e] += red[(li + s) * RC + e]; }
      }
      workgroupBarrier();
    }
    for (var e = 0u; e < RC; e++) { (*acc)[q * RC + e] = red[(li - lane) * RC + e]; }
    workgroupBarrier();
  }
  return 0u;
}
#endif
