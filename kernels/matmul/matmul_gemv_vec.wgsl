// matmul_gemv_vec: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) for 1..RB rows r (decode), at the bandwidth
// limit on W: each weight is read once for all RB rows, which are held in registers.
// Bindings: step uniform; x [R, IN] f32; W [OUT, IN] packed (WDT); bias [OUT] f32 (dummy if !HAS_BIAS); y [R, OUT] f32.
// Runtime dims uniform: IN, OUT, U (load units per W row), TPR (lanes per lane group: a power of two ≤ WG).
// A load unit is 16 bytes of W (vec4<u32>: 8 bf16/f16 or 4 f32) when VEC (IN % 8 == 0, or IN % 4 == 0 for f32),
// else one u32 word (2 bf16/f16 or 1 f32): E elements; x is read as vec4<f32> when VEC, else as f32.
// Register tile: a lane group of TPR lanes owns CB consecutive output columns o0 .. o0 + CB - 1 (split-K over IN: the
// lanes stride over the units) for RB batch rows, N = RB·CB sums per lane. Per unit a lane loads CB W units (unpacked
// once) and, per batch row, one unit of x that serves all CB columns: x bytes per FMA fall as 4 / CB, W bytes as 2 / RB
// (bf16), which moves batched decode from L1-bound to FMA-bound. Columns past OUT read the last row and are never written.
// Dispatch: workgroups of WG threads, WG / TPR lane groups each; grid over x (and y past 65535) of
// ceil(ceil(OUT / CB) / (WG / TPR)); z over blocks of RB rows. UNROLL units in flight per lane (loads issued first).
// Reduction over the TPR lanes of a group: SG_RED (lanes of a 1-D workgroup laid out consecutively in subgroups of the
// runtime size sg ≥ SGS, the adapter's smallest): TS transposing butterfly steps (strides 1, 2, 4: each halves the sums a
// lane carries, the lane keeping the half its stride bit selects, so N sums cost N - N / 2^TS shuffles instead of N per
// stride), then plain subgroupShuffleXor butterflies over the M = N >> TS sums left up to min(TPR, sg), plus a
// workgroup-memory pass over the TPR / sg subgroups when TPR > sg; else (portable, TS 0) a workgroup-memory tree in
// chunks of RC ≤ 16 sums. Afterwards slot i of a lane whose low TS lane bits are b holds sum j = i + voff(b) (j = r·CB + c).
// Defines: WG, RB, CB (1, 2 or 4: CV2 / CV4 say which vector holds a row's columns), E, TS, UNROLL, VEC, SG_RED, SGS, ACT, HAS_BIAS, ACCUM, ROWS_K, W_F32, W_F16 (WDT 0: no wpair()).
// COMB (matmul_gemv_comb.ts: attention's output projection with split-K attention's combine pass folded in; VEC,
// rows 'n'): binding 1 is `part`, the partials of sdpa_split.wgsl for the x [R, IN = H·D] it stands for, and binding 6
// `cdims` (H, D, S, RS); each workgroup first combines its block's RB rows of x into workgroup memory (CIN = IN,
// CH = H: its sizes), then runs as above on them.
// EMB (the matmul_gemv_emb kernel, a decoder's first o_proj: matmul_gemv_comb.ts `embed`): the residual is the token's
// embedding row instead of y — y[r, o] = act(Σ + bias) + emb[token_id(r), o] (unpacked as embed.wgsl does: the value
// embed would have written to y, added as ACCUM adds it), bindings 6 and 7 the step metadata and the table [V, OUT]
// (EMB_F32 / EMB_F16 / else bf16); ACCUM off. The layer's q|k|v read the same rows (matmul_gemv_multi.wgsl EMBED).
// Accumulates in f32 (fma chains).
#include "common.wgsl"
#include "matmul_gemv_common.wgsl"
#include "act.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
#if COMB
@group(0) @binding(1) var<storage, read> part: array<vec4f>;     // split-K attention partials [R·H, RS / 4]
var<workgroup> x: array<XUNIT, RB * CIN / 4u>;                    // the block's RB rows, combined from part
#else
@group(0) @binding(1) var<storage, read> x: array<XUNIT>;        // [R, IN] (as IN / 4 vec4f when VEC)
#endif
@group(0) @binding(2) var<storage, read> W: array<WUNIT>;        // [OUT, U]
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [OUT]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [R, OUT]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // IN, OUT, U, TPR
#if EMB
@group(0) @binding(6) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(7) var<storage, read> emb: array<u32>;         // [V, OUT] packed (EMB_F32: f32 words)

// element i of the table, as embed.wgsl's wpair() unpacks it
fn emb_at(i: u32) -> f32 {
#if EMB_F32
  return bitcast<f32>(emb[i]);
#else
  let w = emb[i / 2u];
#if EMB_F16
  return unpack2x16float(w)[i % 2u];
#else
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
#endif
#endif
}
#endif
#if COMB
@group(0) @binding(6) var<uniform> cdims: vec4u;                  // H, D, S, RS of the partials
var<workgroup> cmax: array<f32, RB * CH>;                         // per (row, head): max_s m_s
var<workgroup> cden: array<f32, RB * CH>;                         // Σ_s e^{m_s − M} l_s
#endif

#if SG_RED
// M sums per (subgroup, low-bit class) when a group spans several subgroups
var<workgroup> red: array<f32, (WG / SGS) * N>;
#else
const RC = min(N, 16u);      // sums per pass of the workgroup-memory tree
var<workgroup> red: array<f32, WG * RC>;
#endif





// acc[r] (the CB columns of batch row r of the block xg) += t · x unit u of row r: E vector FMAs on one x load
fn tile_row(acc: ptr<function, array<CV, RB>>, t: array<CV, E>, xg: vec4u, u: u32, r: u32) {
  let xv = xvals(xg.x + min(xg.y + r, xg.z) * xg.w, u);
  var s = (*acc)[r];
  for (var e = 0u; e < E; e++) { s = fma(t[e], CV(xv[e]), s); }
  (*acc)[r] = s;
}

// every row of the block += the CB loaded W units (unpacked once and transposed to t[e], element e of every column)
fn tile(acc: ptr<function, array<CV, RB>>, w: array<WUNIT, CB>, xg: vec4u, u: u32) {
  let t = columns(w);
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

#if COMB
fn partf(i: u32) -> f32 { return part[i / 4u][i % 4u]; }

// x rows r0 .. r0 + nr - 1 of the block into workgroup memory, from split-K attention's partials (sdpa_split.wgsl:
// per (token, head) row of RS floats, m_s at s, l_s at S + s, acc_s at MLW + s·D): x[r, h·D + d] =
// Σ_s e^{m_s − M} acc_s[d] / Σ_s e^{m_s − M} l_s, M = max_s m_s, as sdpa_combine.wgsl (sums in split order).
fn combine(li: u32, r0: u32, nr: u32) {
  let H = cdims.x;
  let Q = cdims.y / 4u;        // vec4f of a head
  let S = cdims.z;
  let RS = cdims.w;
  let MLW = (2u * S + 3u) / 4u * 4u;
  for (var t = li; t < nr * H; t += WG) {
    let b = (r0 * H + t) * RS;
    var m = -3.0e38;
    for (var s = 0u; s < S; s++) { m = max(m, partf(b + s)); }
    var l = 0.0;
    for (var s = 0u; s < S; s++) { l += exp(partf(b + s) - m) * partf(b + S + s); }
    cmax[t] = m;
    cden[t] = l;
  }
  workgroupBarrier();
  for (var k = li; k < nr * H * Q; k += WG) {
    let t = k / Q;
    let b = (r0 * H + t) * RS;
    let m = cmax[t];
    let a0 = (b + MLW) / 4u + k % Q;
    var a = vec4f(0.0);
    for (var s = 0u; s < S; s++) { a += exp(partf(b + s) - m) * part[a0 + s * Q]; }
    x[k] = a / cden[t];      // row t / H, element (t % H)·D + 4·(k % Q): k in row-major order
  }
  workgroupBarrier();
}
#endif


@compute @workgroup_size(WG)
#if COMB
fn matmul_gemv_comb(
#else
#if EMB
fn matmul_gemv_emb(
#else
fn matmul_gemv_vec(
#endif
#endif
#if SG_RED
  @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u, @builtin(subgroup_size) sg: u32) {
#else
  @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
#endif
  let IN = dims.x;
  let OUT = dims.y;
  let U = dims.z;
  let TPR = dims.w;
  var rows = step.n;
  if (ROWS_K) { rows = step.k; }
  let lane = li % TPR;
  let sub = li / TPR;
  let o0 = ((g.x + g.y * ng.x) * (WG / TPR) + sub) * CB;
  let r0 = g.z * RB;
#if VEC
  let xs = IN / 4u;      // x row stride in vec4f
#else
  let xs = IN;
#endif
  // x rows past the step's last are clamped to it: their sums are computed and never written
#if COMB
  // x holds the block's rows only (combined here): row r of the block at r · xs
  let nr = select(0u, min(rows - r0, RB), r0 < rows);
  combine(li, r0, nr);
  let xg = vec4u(0u, 0u, max(nr, 1u) - 1u, xs);
#else
  let xg = vec4u(0u, r0, rows - 1u, xs);   // batch row r of the block starts at x[xg.x + min(xg.y + r, xg.z) · xg.w]
#endif
  var av: array<CV, RB>;
  if (o0 < OUT) {
    var wb: array<u32, CB>;
    for (var c = 0u; c < CB; c++) { wb[c] = min(o0 + c, OUT - 1u) * U; }
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      var wv: array<array<WUNIT, CB>, UNROLL>;
      for (var k = 0u; k < UNROLL; k++) {
        for (var c = 0u; c < CB; c++) { wv[k][c] = W[wb[c] + u + k * TPR]; }   // all loads in flight first
      }
      for (var k = 0u; k < UNROLL; k++) { tile(&av, wv[k], xg, u + k * TPR); }
    }
    for (; u < U; u += TPR) {
      var w1: array<WUNIT, CB>;
      for (var c = 0u; c < CB; c++) { w1[c] = W[wb[c] + u]; }
      tile(&av, w1, xg, u);
    }
  }

  // the sums flat, j = r·CB + c
  var acc: array<f32, N>;
  for (var r = 0u; r < RB; r++) { for (var c = 0u; c < CB; c++) { acc[r * CB + c] = col(av[r], c); } }

#if SG_RED
  // transposing steps: stride s = 1, 2, 4; h = sums kept; the lane with the stride bit set keeps the upper half
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
  let lb = lane & ((1u << TS) - 1u);
  if (TPR > sg) {
    // sum the TPR / sg subgroups of each group through workgroup memory
    let si = li / sg;
    if ((li % sg) >> TS == 0u) { for (var i = 0u; i < M; i++) { red[((si << TS) | lb) * M + i] = acc[i]; } }
    workgroupBarrier();
    let f0 = sub * (TPR / sg);
    for (var i = 0u; i < M; i++) {
      var v = 0.0;
      for (var j = 0u; j < TPR / sg; j++) { v += red[(((f0 + j) << TS) | lb) * M + i]; }
      acc[i] = v;
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
#endif

  // lanes of one low-bit class hold the same sums: of those, lane class member m writes slots i ≡ m (mod TPR >> TS)
  let first = voff(lb);
  let mates = TPR >> TS;
  for (var i = 0u; i < M; i++) {
    let j = first + i;
    let row = r0 + j / CB;
    let o = o0 + j % CB;
    if ((lane >> TS) == i % mates && row < rows && o < OUT) {
      var v = acc[i];
      if (HAS_BIAS) { v += bias[o]; }
      v = act(v);
      if (ACCUM) { v += y[row * OUT + o]; }
#if EMB
      v += emb_at(token_id(row) * OUT + o);
#endif
      y[row * OUT + o] = v;
    }
  }
}
