// matmul_gemv_multi: sibling projections of one input in one decode GEMV, with the RMSNorm that feeds them in its
// prologue: for parts p < NP (NP ≤ 3), y_p[r, o] (+)= act_p(Σ_i n[r, i]·W_p[o, i]) where n is plane XP_p of x (planes of
// step.cap rows) when !NORM, else n[r, i] = x[r, i]·gn[i]·rsqrt(mean_i x[r, i]² + eps) (the RMSNorm, its sum of
// squares taken from the same x loads).
// Geometry, loads, register tile, reductions and defines as matmul_gemv_vec (WG, RB, CB, CV2, CV4, E, TS, UNROLL, VEC, SG_RED,
// SGS, ACT, ACCUM, ROWS_K, W_F32, W_F16): a lane group owns CB consecutive columns of one part (each part starts at a
// whole workgroup, so a workgroup reads one W_p), plus NP, NORM, SWIGLU and ACT0..ACT2 (each part's activation, codes
// as ACT).
// SWIGLU (NP = 2, gate and up of the same OUT, CB ≥ 2): a lane group owns H = CB / 2 outputs o0 .. o0 + H - 1, its
// columns c < H the gate rows (W0) and c ≥ H the up rows (W1) of them; sums are laid out gate half then up half, so
// after the reduction each gate sum's up sum sits in the same slot of the lane across stride 1 (or in the lane itself
// when TS = 0), and the group writes y0[r, o] = silu(g)·u (as silu_mul computes it); y1 is not written.
// PART_RT: the loads' part chosen at run time (one copy of the accumulation loop) instead of one inlined copy per part.
// Bindings: step uniform; x [R, IN] f32; gn [IN] f32 (dummy if !NORM); W0..W2 [OUT_p, IN] packed (dummy past NP);
// y0..y2 [R, OUT_p] f32 (dummy past NP); dims: (IN, U, TPR, eps bits), (OUT_0, OUT_1, OUT_2, 0),
// (first workgroup of part 1, of part 2, 0, 0), (plane of x read by part 0, 1, 2, 0).
// Accumulates in f32. Reference: the unfused rms_norm then one matmul per part (matmul_gemv_multi.ref.ts).
// ROPE (the matmul_gemv_rope kernel, matmul_gemv_rope.ts: q|k|v with rope_kv in the epilogue, no q/k norm, no
// biases): NP = 3 parts q [H·D], k, v [KV·D]; a lane group owns H = CB / 2 column pairs of one part, pair
// (i, i + R/2) of a head for i < R/2 (the RoPE partners), then (R + i, R + i + (D − R)/2) for the unrotated rest
// (pair_cols), laid out as SWIGLU's gate|up halves; after the reduction q and k pairs are rotated (position of the
// row's token, table row clamped to P − 1, as rope_kv.wgsl) and written by the lane: q to q [R, H·D], k and v to the
// caches kc, vc at the token's row (kv_cache.wgsl, the layout rope_kv and kv_store share); KV16: k and v staged in
// workgroup memory, then 16-bit pairs of adjacent columns from adjacent pairs (needs D, R multiples of 4 and RPW·H
// even). Bindings
// then: step, stepmeta, x, gn, W0..W2, q, kc, vc [slots, ctx, KV·D as KVDT words], table [2, P, R/2], dims, rdims
// (D, R/2, P, ctx), (KV·D, 0, 0, 0). Extra defines: ROPE, RPW (lane groups a workgroup), KV16, KV_F16.
// ARGMAX (the matmul_gemv_argmax kernel: an output head, NP = 1, no SWIGLU, ACT none, no ACCUM): argmax's first pass
// in the epilogue (kernels/sample/argmax.wgsl): each workgroup reduces the values it wrote of each row to (value
// key, index, non-finite flag) in argmax_common.wgsl's order — the same values as y0 holds, so the ids equal argmax's
// over y0 — and writes them to part[row, 3·wg] (subgroup shuffles then one barrier a row, or a workgroup-memory tree);
// argmax's FINAL pass then reduces the G = workgroups partials of each row. Extra binding: part [K, 3G] u32.
// EMBED (ROPE only: a decoder's first layer, matmul_gemv_rope.ts `embed`): x is the embedding table [V, IN] packed as
// W (the same dtype), and row r's values are the row of its token (token_id(r)), unpacked as the weights are — the f32
// values embed.wgsl would have written to x, so the sums are the same; x itself is neither read nor written (the
// layer's o_proj adds the embedding row as the residual: matmul_gemv_vec.wgsl EMB).
#include "common.wgsl"
#include "matmul_gemv_common.wgsl"

#if ROPE
#include "kv_cache.wgsl"
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
#if EMBED
@group(0) @binding(2) var<storage, read> x: array<WUNIT>;        // the embedding table [V, U] (packed as W)
var<private> erow: array<u32, RB>;                               // the first unit of each block row's table row
#else
@group(0) @binding(2) var<storage, read> x: array<XUNIT>;        // [R, IN] (as IN / 4 vec4f when VEC)
#endif
@group(0) @binding(3) var<storage, read> gn: array<XUNIT>;       // [IN]
@group(0) @binding(4) var<storage, read> W0: array<WUNIT>;       // [OUT_0, U]
@group(0) @binding(5) var<storage, read> W1: array<WUNIT>;
@group(0) @binding(6) var<storage, read> W2: array<WUNIT>;
@group(0) @binding(7) var<storage, read_write> q: array<f32>;    // [R, H·D]
@group(0) @binding(8) var<storage, read_write> kc: array<u32>;   // [slots, ctx, KV·D] (÷2 words when 16-bit)
@group(0) @binding(9) var<storage, read_write> vc: array<u32>;
@group(0) @binding(10) var<storage, read> table: array<f32>;     // [2, P, R/2]
@group(0) @binding(11) var<uniform> dims: array<vec4u, 4>;
@group(0) @binding(12) var<uniform> rdims: array<vec4u, 2>;
#else
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<XUNIT>;        // [R, IN] (as IN / 4 vec4f when VEC)
@group(0) @binding(2) var<storage, read> gn: array<XUNIT>;       // [IN]
@group(0) @binding(3) var<storage, read> W0: array<WUNIT>;       // [OUT_0, U]
@group(0) @binding(4) var<storage, read> W1: array<WUNIT>;
@group(0) @binding(5) var<storage, read> W2: array<WUNIT>;
@group(0) @binding(6) var<storage, read_write> y0: array<f32>;   // [R, OUT_0]
@group(0) @binding(7) var<storage, read_write> y1: array<f32>;
@group(0) @binding(8) var<storage, read_write> y2: array<f32>;
@group(0) @binding(9) var<uniform> dims: array<vec4u, 4>;
#if ARGMAX
#include "argmax_common.wgsl"
@group(0) @binding(10) var<storage, read_write> part: array<u32>;   // [K, 3G]: (value key, index, flag) per workgroup
#if SG_RED
var<workgroup> amx: array<vec3u, WG / SGS>;
#else
var<workgroup> amx: array<vec3u, WG>;
#endif
#endif
#endif

const H = max(CB / 2u, 1u);  // SWIGLU: outputs per lane group; ROPE: column pairs per lane group
const PAIRED = SWIGLU || ROPE;
#if KV16
var<workgroup> stage: array<f32, RB * RPW * CB>;   // KV16: [RB, RPW·H pairs, 2], the workgroup's final k or v values
#endif
#if SG_RED
var<workgroup> red: array<f32, (WG / SGS) * N>;
var<workgroup> redss: array<f32, (WG / SGS) * RB>;
#else
const RC = min(N, 16u);      // sums per pass of the workgroup-memory tree (≥ RB: the sums of squares take one pass)
var<workgroup> red: array<f32, WG * RC>;
#endif

fn wload(p: u32, i: u32) -> WUNIT {
  if (p == 0u) { return W0[i]; }
  if (p == 1u) { return W1[i]; }
  return W2[i];
}

#if ROPE
// columns (within its part) of column pair j: RoPE partners (i, i + R/2) of a head first, then the unrotated rest
fn pair_cols(j: u32) -> vec2u {
  let D = rdims[0].x;
  let half = rdims[0].y;
  let m = j % (D / 2u);
  let hd = (j / (D / 2u)) * D;
  if (m < half) { return vec2u(hd + m, hd + m + half); }
  let lo = m + half;   // R + (m − R/2)
  return vec2u(hd + lo, hd + lo + (D - 2u * half) / 2u);
}
#else
fn yload(p: u32, i: u32) -> f32 {
  if (p == 0u) { return y0[i]; }
  if (p == 1u) { return y1[i]; }
  return y2[i];
}
#endif

// act.wgsl's activations by code, for the part's own code
fn act_code(code: u32, v: f32) -> f32 {
  if (code == 1u) { return tanh_stable(v); }
  if (code == 2u) { return sigmoid(v); }
  if (code == 3u) { let r = max(v, 0.0); return r * r; }
  if (code == 4u) { return -0.6065306597126334 * sigmoid(v); }   // RWKV7 log-decay −e^{−0.5}·σ(v)
  return v;
}

fn part_act(p: u32, v: f32) -> f32 {
  if (p == 0u) { return act_code(ACT0, v); }
  if (p == 1u) { return act_code(ACT1, v); }
  return act_code(ACT2, v);
}

#if !ROPE
fn ystore(p: u32, i: u32, v: f32) {
  if (p == 0u) { y0[i] = v; } else if (p == 1u) { y1[i] = v; } else { y2[i] = v; }
}
#endif



// The E norm weights under unit u.
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

// where column c's sum of batch row r sits
fn vi(r: u32, c: u32) -> u32 {
  if (PAIRED) { return (c / H) * (N / 2u) + r * H + c % H; }
  return r * CB + c;
}



// acc[r] (the CB columns of batch row r of the block xg) += t · (gn ·) x unit u of row r (E vector FMAs on one x
// load), ss[r] += Σ x² of it
fn tile_row(acc: ptr<function, array<CV, RB>>, ss: ptr<function, array<f32, RB>>, t: array<CV, E>, gv: array<f32, E>, xg: vec4u, u: u32, r: u32) {
#if EMBED
  var xv = wvals(x[erow[r] + u]);   // the token's embedding row, unit u
#else
  var xv = xvals(xg.x + min(xg.y + r, xg.z) * xg.w, u);
#endif
  if (NORM) {
    var q = (*ss)[r];
    for (var e = 0u; e < E; e++) { q = fma(xv[e], xv[e], q); xv[e] *= gv[e]; }
    (*ss)[r] = q;
  }
  var s = (*acc)[r];
  for (var e = 0u; e < E; e++) { s = fma(t[e], CV(xv[e]), s); }
  (*acc)[r] = s;
}

// every row of the block += the CB loaded W units (unpacked once and transposed to t[e], element e of every column)
fn tile(acc: ptr<function, array<CV, RB>>, ss: ptr<function, array<f32, RB>>, w: array<WUNIT, CB>, xg: vec4u, u: u32) {
  let t = columns(w);
  var gv: array<f32, E>;
  if (NORM) { gv = gvals(u); }
#if ROW_LOOP
  for (var r = 0u; r < RB; r++) { tile_row(acc, ss, t, gv, xg, u, r); }
#else
  // rows by explicit calls (RB a power of two ≤ 16): every acc index a constant once the call is inlined, with no
  // reliance on the driver unrolling a 16-trip loop whose body is E vector FMAs
  tile_row(acc, ss, t, gv, xg, u, 0u);
  if (RB > 1u) { tile_row(acc, ss, t, gv, xg, u, 1u); }
  if (RB > 2u) { tile_row(acc, ss, t, gv, xg, u, 2u); tile_row(acc, ss, t, gv, xg, u, 3u); }
  if (RB > 4u) {
    tile_row(acc, ss, t, gv, xg, u, 4u); tile_row(acc, ss, t, gv, xg, u, 5u); tile_row(acc, ss, t, gv, xg, u, 6u); tile_row(acc, ss, t, gv, xg, u, 7u);
  }
  if (RB > 8u) {
    tile_row(acc, ss, t, gv, xg, u, 8u); tile_row(acc, ss, t, gv, xg, u, 9u); tile_row(acc, ss, t, gv, xg, u, 10u); tile_row(acc, ss, t, gv, xg, u, 11u);
    tile_row(acc, ss, t, gv, xg, u, 12u); tile_row(acc, ss, t, gv, xg, u, 13u); tile_row(acc, ss, t, gv, xg, u, 14u); tile_row(acc, ss, t, gv, xg, u, 15u);
  }
#endif
}


// column c's part: the gate|up half under SWIGLU, else the group's part pc
fn colpart(pc: u32, c: u32) -> u32 {
  if (SWIGLU) { return c / H; }
  return pc;
}

// the lane's units of part pc (a constant at every call) for the CB W rows at wb, UNROLL units in flight
fn accum(pc: u32, acc: ptr<function, array<CV, RB>>, ss: ptr<function, array<f32, RB>>, wb: array<u32, CB>, xg: vec4u, lane: u32, TPR: u32, U: u32) {
  var u = lane;
  for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
    var wv: array<array<WUNIT, CB>, UNROLL>;
    for (var k = 0u; k < UNROLL; k++) {
      for (var c = 0u; c < CB; c++) { wv[k][c] = wload(colpart(pc, c), wb[c] + u + k * TPR); }   // all loads in flight first
    }
    for (var k = 0u; k < UNROLL; k++) { tile(acc, ss, wv[k], xg, u + k * TPR); }
  }
  for (; u < U; u += TPR) {
    var w1: array<WUNIT, CB>;
    for (var c = 0u; c < CB; c++) { w1[c] = wload(colpart(pc, c), wb[c] + u); }
    tile(acc, ss, w1, xg, u);
  }
}

@compute @workgroup_size(WG)
#if ROPE
#if SG_RED
fn matmul_gemv_rope(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_gemv_rope(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
#else
#if ARGMAX
#if SG_RED
fn matmul_gemv_argmax(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_gemv_argmax(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
#else
#if SG_RED
fn matmul_gemv_multi(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn matmul_gemv_multi(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
#endif
#endif
  let IN = dims[0].x;
  let U = dims[0].y;
  let TPR = dims[0].z;
  let eps = bitcast<f32>(dims[0].w);
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let lane = li % TPR;
  let sub = li / TPR;
  let wg = g.x + g.y * ng.x;
  var p = 0u;
  var first = 0u;
  if (!SWIGLU && NP > 1u && wg >= dims[2].x) { p = 1u; first = dims[2].x; }
  if (!SWIGLU && NP > 2u && wg >= dims[2].y) { p = 2u; first = dims[2].y; }
  var o0 = ((wg - first) * (WG / TPR) + sub) * CB;
  if (SWIGLU) { o0 = (wg * (WG / TPR) + sub) * H; }
  if (ROPE) { o0 = ((wg - first) * (WG / TPR) + sub) * H; }     // the group's first column pair
  let OUT = dims[1][p];
  var lim = OUT;             // columns, or pairs of them (ROPE)
  if (ROPE) { lim = OUT / 2u; }
  let r0 = g.z * RB;
#if VEC
  let xs = IN / 4u;      // x row stride in vec4f
#else
  let xs = IN;
#endif
  // x rows past the step's last are clamped to it: their sums are computed and never written
#if EMBED
  // row r of the block: the units of table row token_id(min(r0 + r, rows − 1)), its first unit looked up once here
  // (not in front of every x load)
  let xg = vec4u(0u, r0, rows - 1u, U);
  for (var r = 0u; r < RB; r++) { erow[r] = token_id(min(r0 + r, rows - 1u)) * U; }
#else
  let xg = vec4u(dims[3][p] * step.cap * xs, r0, rows - 1u, xs);   // row r of the block: x[xg.x + min(xg.y + r, xg.z) · xg.w]
#endif
#if ROPE
  // each row's position and cache row, and at one row the group's (cos, sin), loaded before the GEMV so that their
  // dependent loads (step metadata, then the table) hide behind the weight stream
  let D = rdims[0].x;
  let half = rdims[0].y;
  let P = rdims[0].z;
  var posr: array<u32, RB>;
  var kvr: array<u32, RB>;       // first cache element of the row's token
  for (var r = 0u; r < RB; r++) {
    let t = min(r0 + r, rows - 1u);
    posr[r] = min(kv_pos(t), P - 1u);
    kvr[r] = kv_row(t, rdims[0].w, rdims[1].x);
  }
  var cs1: array<vec2f, H>;
  if (RB == 1u) {
    for (var c = 0u; c < H; c++) {
      let m = (o0 + c) % (D / 2u);
      if (p < 2u && m < half && o0 + c < lim) { cs1[c] = vec2f(table[posr[0] * half + m], table[P * half + posr[0] * half + m]); }
    }
  }
#endif
  var av: array<CV, RB>;
  var ss: array<f32, RB>;        // Σ x² per row (NORM)
  if (o0 < lim) {
    // column c's W row (rows past OUT clamped to the last: computed, never written)
    var wb: array<u32, CB>;
    for (var c = 0u; c < CB; c++) {
      var oc = o0 + c;
      if (SWIGLU) { oc = o0 + c % H; }
#if ROPE
      oc = pair_cols(min(o0 + c % H, lim - 1u))[c / H];
#endif
      wb[c] = min(oc, OUT - 1u) * U;
    }
#if PART_RT
    // one call with the part a run-time (workgroup-uniform) value: one copy of the tile's code instead of NP
    accum(select(p, 0u, SWIGLU), &av, &ss, wb, xg, lane, TPR, U);
#else
    // one call per part with the part a constant, so that each load's binding is known and a step's loads issue together
    if (SWIGLU || NP == 1u || p == 0u) { accum(0u, &av, &ss, wb, xg, lane, TPR, U); }
    else if (NP == 2u || p == 1u) { accum(1u, &av, &ss, wb, xg, lane, TPR, U); }
    else { accum(2u, &av, &ss, wb, xg, lane, TPR, U); }
#endif
  }

  // the sums flat at vi(r, c)
  var acc: array<f32, N>;
  for (var r = 0u; r < RB; r++) { for (var c = 0u; c < CB; c++) { acc[vi(r, c)] = col(av[r], c); } }

#if SG_RED
  // transposing steps (as matmul_gemv_vec): stride 1, 2, 4, the lane with the stride bit set keeping the upper half
  if (TS > 0u) {
    let hi = (lane & 1u) != 0u;
    for (var i = 0u; i < N / 2u; i++) {
      let keep = select(acc[i], acc[i + N / 2u], hi);
      let send = select(acc[i + N / 2u], acc[i], hi);
      acc[i] = keep + subgroupShuffleXor(send, 1u);
    }
  }
  if (TS > 1u) {
    let hi = (lane & 2u) != 0u;
    for (var i = 0u; i < N / 4u; i++) {
      let keep = select(acc[i], acc[i + N / 4u], hi);
      let send = select(acc[i + N / 4u], acc[i], hi);
      acc[i] = keep + subgroupShuffleXor(send, 2u);
    }
  }
  if (TS > 2u) {
    let hi = (lane & 4u) != 0u;
    for (var i = 0u; i < N / 8u; i++) {
      let keep = select(acc[i], acc[i + N / 8u], hi);
      let send = select(acc[i + N / 8u], acc[i], hi);
      acc[i] = keep + subgroupShuffleXor(send, 4u);
    }
  }
  let span = min(TPR, sg);
  for (var s = 1u << TS; s < span; s <<= 1u) {
    for (var i = 0u; i < M; i++) { acc[i] += subgroupShuffleXor(acc[i], s); }
  }
  if (NORM) {
    for (var s = 1u; s < span; s <<= 1u) {
      for (var r = 0u; r < RB; r++) { ss[r] += subgroupShuffleXor(ss[r], s); }
    }
  }
  let lb = lane & ((1u << TS) - 1u);
  if (TPR > sg) {
    // sum the TPR / sg subgroups of each group through workgroup memory
    let si = li / sg;
    if ((li % sg) >> TS == 0u) { for (var i = 0u; i < M; i++) { red[((si << TS) | lb) * M + i] = acc[i]; } }
    if (NORM && li % sg == 0u) { for (var r = 0u; r < RB; r++) { redss[si * RB + r] = ss[r]; } }
    workgroupBarrier();
    let f0 = sub * (TPR / sg);
    for (var i = 0u; i < M; i++) {
      var v = 0.0;
      for (var j = 0u; j < TPR / sg; j++) { v += red[(((f0 + j) << TS) | lb) * M + i]; }
      acc[i] = v;
    }
    if (NORM) {
      for (var r = 0u; r < RB; r++) {
        var v = 0.0;
        for (var j = 0u; j < TPR / sg; j++) { v += redss[(f0 + j) * RB + r]; }
        ss[r] = v;
      }
    }
  }
#else
  let lb = 0u;
  for (var q = 0u; q < N / RC; q++) {
    for (var e = 0u; e < RC; e++) { red[li * RC + e] = acc[q * RC + e]; }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var e = 0u; e < RC; e++) { red[li * RC + e] += red[(li + s) * RC + e]; }
      }
      workgroupBarrier();
    }
    for (var e = 0u; e < RC; e++) { acc[q * RC + e] = red[(li - lane) * RC + e]; }
    workgroupBarrier();
  }
  if (NORM) {
    for (var r = 0u; r < RB; r++) { red[li * RC + r] = ss[r]; }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
      if (lane < s) {
        for (var r = 0u; r < RB; r++) { red[li * RC + r] += red[(li + s) * RC + r]; }
      }
      workgroupBarrier();
    }
    for (var r = 0u; r < RB; r++) { ss[r] = red[(li - lane) * RC + r]; }
  }
#endif

#if ARGMAX
  var cand: array<vec3u, RB>;    // per batch row: the best (key, index) this lane wrote, and its non-finite flag
  for (var r = 0u; r < RB; r++) { cand[r] = vec3u(0u, 0xffffffffu, 0u); }
#endif
  // lanes of one low-bit class hold the same sums: of those, class member m writes slots i ≡ m (mod TPR >> TS)
  let f = voff(lb);
  let mates = TPR >> TS;
  for (var i = 0u; i < M; i++) {
    let j = f + i;
#if ROPE
    // the pair's second column's sum: slot i across stride 1, or slot i + N / 2 here (as SWIGLU's up sum)
#if SG_RED
    var hs: f32;
    if (TS > 0u) { hs = subgroupShuffleXor(acc[i], 1u); } else { hs = acc[(i + N / 2u) % N]; }
#else
    let hs = acc[(i + N / 2u) % N];
#endif
    let r = j / H;
    let row = r0 + r;
    let pr = o0 + j % H;
    if (j < N / 2u && (lane >> TS) == i % mates && row < rows && pr < lim) {
      var a = acc[i];
      var b = hs;
      if (NORM) { let k = inverseSqrt(ss[r] / f32(IN) + eps); a *= k; b *= k; }
      let m = pr % (D / 2u);
      if (p < 2u && m < half) {
        // rotate-half RoPE of the pair (i, i + R/2) at the token's position (rope_kv.wgsl's arithmetic)
        var t = cs1[j % H];
        if (RB > 1u) { let pp = posr[min(r, RB - 1u)]; t = vec2f(table[pp * half + m], table[P * half + pp * half + m]); }
        let lo = a * t.x - b * t.y;
        b = b * t.x + a * t.y;
        a = lo;
      }
      if (!KV16 || p == 0u) {
        // q, and k, v into an f32 cache: straight from the lane
        let cc = pair_cols(pr);
        if (p == 0u) { q[row * OUT + cc.x] = a; q[row * OUT + cc.y] = b; }
        else {
          let o = kvr[min(r, RB - 1u)];
          if (p == 1u) { kc[o + cc.x] = bitcast<u32>(a); kc[o + cc.y] = bitcast<u32>(b); }
          else { vc[o + cc.x] = bitcast<u32>(a); vc[o + cc.y] = bitcast<u32>(b); }
        }
      } else {
#if KV16
        let si = (r * RPW * H + sub * H + j % H) * 2u;
        stage[si] = a;
        stage[si + 1u] = b;
#endif
      }
    }
#else
    if (SWIGLU) {
      // the up sum of gate sum j (< N / 2) is sum j + N / 2: slot i across stride 1, or slot i + N / 2 here
#if SG_RED
      var up: f32;
      if (TS > 0u) { up = subgroupShuffleXor(acc[i], 1u); } else { up = acc[(i + N / 2u) % N]; }
#else
      let up = acc[(i + N / 2u) % N];
#endif
      let r = j / H;
      let row = r0 + r;
      let o = o0 + j % H;
      if (j < N / 2u && (lane >> TS) == i % mates && row < rows && o < OUT) {
        var gs = acc[i];
        var us = up;
        if (NORM) { let k = inverseSqrt(ss[r] / f32(IN) + eps); gs *= k; us *= k; }
        y0[row * OUT + o] = gs * sigmoid(gs) * us;
      }
    } else {
      let r = j / CB;
      let row = r0 + r;
      let o = o0 + j % CB;
      if ((lane >> TS) == i % mates && row < rows && o < OUT) {
        var s = acc[i];
        if (NORM) { s *= inverseSqrt(ss[r] / f32(IN) + eps); }
        var v = part_act(p, s);
        if (ACCUM) { v += yload(p, row * OUT + o); }
        ystore(p, row * OUT + o, v);
#if ARGMAX
        let kv = argmax_key(v);
        if (argmax_nonfinite(v)) { cand[r].z = 1u; }
        if (argmax_better(kv, o, cand[r].x, cand[r].y)) { cand[r].x = kv; cand[r].y = o; }
#endif
      }
    }
#endif
  }
#if ARGMAX
  // each batch row's candidates over the workgroup → part[row, 3·wg]; rows past the step's are not written
  let G = ng.x * ng.y;
  for (var r = 0u; r < RB; r++) {
    var c = cand[r];
#if SG_RED
    for (var s = 1u; s < sg; s <<= 1u) {
      let d = subgroupShuffleXor(c, s);
      if (argmax_better(d.x, d.y, c.x, c.y)) { c.x = d.x; c.y = d.y; }
      c.z |= d.z;
    }
    if (li % sg == 0u) { amx[li / sg] = c; }
    workgroupBarrier();
    if (li == 0u && r0 + r < rows) {
      for (var i = 1u; i < WG / sg; i++) {
        let d = amx[i];
        if (argmax_better(d.x, d.y, c.x, c.y)) { c.x = d.x; c.y = d.y; }
        c.z |= d.z;
      }
#else
    amx[li] = c;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (li < s) {
        let d = amx[li + s];
        var e = amx[li];
        if (argmax_better(d.x, d.y, e.x, e.y)) { e.x = d.x; e.y = d.y; }
        e.z |= d.z;
        amx[li] = e;
      }
      workgroupBarrier();
    }
    if (li == 0u && r0 + r < rows) {
      c = amx[0];
#endif
      let q = 3u * ((r0 + r) * G + wg);
      part[q] = c.x;
      part[q + 1u] = c.y;
      part[q + 2u] = c.z;
    }
    workgroupBarrier();   // amx is rewritten for the next row
  }
#endif
#if ROPE
#if KV16
  // k and v into a 16-bit cache from the stage: adjacent pairs 2a, 2a + 1 hold adjacent columns, so one word of
  // their first columns and one of their second
  workgroupBarrier();
  if (p > 0u) {
    let PW = RPW * H;                                      // pairs a workgroup
    let pw0 = (wg - first) * PW;                           // its first pair within the part
    for (var e = li; e < RB * PW; e += WG) {
      let r = e / PW;
      let lp = 2u * ((e % PW) / 2u);
      let w = e % 2u;
      let row = r0 + r;
      if (row < rows && pw0 + lp + 1u < lim) {
        let word = kv_pack(stage[(r * PW + lp) * 2u + w], stage[(r * PW + lp + 1u) * 2u + w]);
        let o = (kv_row(row, rdims[0].w, rdims[1].x) + pair_cols(pw0 + lp)[w]) / 2u;
        if (p == 1u) { kc[o] = word; } else { vc[o] = word; }
      }
    }
  }
#endif
#endif
}
