// delta_chunk_state: the pass over each sequence's chunks of the chunked delta rule
// (spec-deltanet-attention-qwen3next.md §10 steps 3–5). Per chunk (rows cs..cs+n−1, local i, j), value column c,
// incoming state S_in (DK × BV block of S, in workgroup memory):
//   x_i = β_i·(v_ic − e^{G_i}·(k̂_i·S_in[:, c]))          (U − W·S_in before the UT transform: T·x = U − W·S_in)
//   δ_i = Σ_{j≤i} T_ij·x_j                                 (V_new, T = (I + A)^{−1} from delta_chunk_solve)
//   o_ic = DK^{−1/2}·e^{G_i}·(q̂_i·S_in[:, c]) + Σ_{j≤i} B_ij·δ_j
//   S[:, c] ← e^{G_{n−1}}·S_in[:, c] + Σ_j k̂_j·(e^{G_{n−1} − G_j}·δ_j)
// Bindings: step uniform; stepmeta u32 (cursors); qk [2, cap, H·DK] (q̂, k̂) as vec4; v [N, HV·DV]; gates [3, cap, HV]
// (g, β, G); ab [3, cap, HV·CH] (A, B, T); state [slots, HV, DK, DV] f32 (K-first); o [N, HV·DV]; v may be a part of
// a wider packed row (row stride vS, first column vO).
// Dispatch: (HV·DV/BV, B) workgroups of BV·G threads; thread (g, c) owns column c and the chunk rows i ≡ g (mod G)
// in the token phases, the state rows 4a4 … 4a4 + 3 for a4 ≡ g (mod G) in the state update. S_in is held transposed
// (St[c][a4], vec4 over 4 key rows, row stride DK4 + 1 vec4 so the 16-byte reads of neighbouring columns hit
// distinct banks); q̂ and k̂ are read as vec4 straight from memory (the same address across the BV threads of a row
// group: one broadcast load feeds QPT tokens' 8 FMAs each); T and B rows as vec4 against x / δ held column-wise.
// Runtime dims: (H, HV, DV), (vS, vO) (the layout dims of
// delta_rule_recurrent: dims[2].xy).
// δ overwrites x in sh_x (held in registers across a barrier) and the state update reads e^{G_{n−1} − G_j} from sh_e,
// so the token blocks take one CH × BV block (BV = 32 then fits 32 KiB); TWO_BUF keeps the separate δ block of
// before (x, then the decayed δ, in sh_x; δ in sh_d). VX (without TWO_BUF): sh_x and sh_e as vec4 (a column's row
// stride CH / 4 + 1 vec4: the 16-byte reads of neighbouring columns in distinct banks), four rows a read in the
// T·x and B·δ rows and in the state update (a chunk's last n mod 4 rows one by one there). The same sums either way.
// PF > 0: before the o rows, each thread loads (and keeps in a register until after the state update) one 16-byte
// word of up to PF of the next chunk's 128-byte lines of q̂, k̂, T and B rows, so that chunk's first reads find them
// in the L1 cache (the values are used only behind a never-true test of a runtime dim, dims[3].z = 0).
// Defines: DK4 = DK / 4, BV, G, CH, QPT = CH / G, V_SILU, TWO_BUF, VX, PF. f32; four barriers per chunk.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qk: array<vec4f>;         // [2, cap, H·DK]
@group(0) @binding(3) var<storage, read> v: array<f32>;            // [N, HV·DV]
@group(0) @binding(4) var<storage, read> gates: array<f32>;        // [3, cap, HV]
@group(0) @binding(5) var<storage, read> ab: array<vec4f>;         // [3, cap, HV·CH] as vec4 (CH a multiple of 4)
@group(0) @binding(6) var<storage, read_write> state: array<f32>;  // [slots, HV, DK, DV]
@group(0) @binding(7) var<storage, read_write> o: array<f32>;      // [N, HV·DV]
@group(0) @binding(8) var<uniform> dims: array<vec4u, 4>;          // (H, HV, DV), _, (vS, vO, _, _), _

const RS: u32 = DK4 + 1u;
var<workgroup> St: array<vec4f, BV * RS>;   // S[4a4 .. 4a4+3][c] at c·RS + a4
// four consecutive rows 4·j4 … of column c of x / δ (rows past the chunk's n hold finite leftovers: their T, B
// entries are 0); setx: row i of column c
#if VX
const XS4: u32 = CH / 4u + 1u;   // token-block row stride (vec4)
var<workgroup> sh_x: array<vec4f, BV * XS4>;   // x, then δ: x[j][c] at (c·XS4 + j / 4)[j % 4]
var<workgroup> sh_e: array<vec4f, CH / 4u>;    // e^{G_{n−1} − G_j} at (j / 4)[j % 4]
fn xrow(c: u32, j4: u32) -> vec4f { return sh_x[c * XS4 + j4]; }
fn setx(c: u32, i: u32, x: f32) { sh_x[c * XS4 + i / 4u][i % 4u] = x; }
fn xat(c: u32, j: u32) -> f32 { return sh_x[c * XS4 + j / 4u][j % 4u]; }
fn eat(j: u32) -> f32 { return sh_e[j / 4u][j % 4u]; }
fn sete(i: u32, e: f32) { sh_e[i / 4u][i % 4u] = e; }
#else
const XS: u32 = CH + 1u;   // token-block row stride: a column's rows are contiguous, neighbouring columns in distinct banks
var<workgroup> sh_x: array<f32, BV * XS>;   // TWO_BUF: x, then e^{G_{n−1} − G_j}·δ_j; else x, then δ; x[j][c] at c·XS + j
fn xrow(c: u32, j4: u32) -> vec4f { let o = c * XS + 4u * j4; return vec4f(sh_x[o], sh_x[o + 1u], sh_x[o + 2u], sh_x[o + 3u]); }
fn setx(c: u32, i: u32, x: f32) { sh_x[c * XS + i] = x; }
fn xat(c: u32, j: u32) -> f32 { return sh_x[c * XS + j]; }
#if TWO_BUF
var<workgroup> sh_d: array<f32, BV * XS>;   // δ
fn drow(c: u32, j4: u32) -> vec4f { let o = c * XS + 4u * j4; return vec4f(sh_d[o], sh_d[o + 1u], sh_d[o + 2u], sh_d[o + 3u]); }
#else
var<workgroup> sh_e: array<f32, CH>;        // e^{G_{n−1} − G_j}
fn eat(j: u32) -> f32 { return sh_e[j]; }
fn sete(i: u32, e: f32) { sh_e[i] = e; }
#endif
#endif
#if !TWO_BUF
fn drow(c: u32, j4: u32) -> vec4f { return xrow(c, j4); }
#endif

@compute @workgroup_size(BV * G)
fn delta_chunk_state(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let H = dims[0].x;
  let HV = dims[0].y;
  let DV = dims[0].z;
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let nb = DV / BV;
  let hv = wg.x / nb;
  let c = l.x % BV;
  let g = l.x / BV;
  let col = (wg.x % nb) * BV + c;
  let h = hv / (HV / H);
  let cu = cursor(seq);
  let slot = cu.slot;
  let start = cu.start;
  let end = start + cu.len;
  let base = (slot * HV + hv) * DK4 * 4u * DV + col;
  for (var a4 = g; a4 < DK4; a4 += G) {
    let a = base + 4u * a4 * DV;
    St[c * RS + a4] = vec4f(state[a], state[a + DV], state[a + 2u * DV], state[a + 3u * DV]);
  }
  workgroupBarrier();
  let scale = inverseSqrt(f32(DK4 * 4u));
  let kplane = step.cap * H * DK4;
  let gplane = step.cap * HV;
  let bplane = step.cap * HV * CH;
  for (var cs = start; cs < end; cs += CH) {
    let n = min(CH, end - cs);
    var ks = array<f32, QPT>();
    var qs = array<f32, QPT>();
    for (var a4 = 0u; a4 < DK4; a4++) {
      let s = St[c * RS + a4];
      for (var m = 0u; m < QPT; m++) {
        let i = min(g + m * G, n - 1u);   // rows past the chunk repeat its last (never stored)
        let ok = ((cs + i) * H + h) * DK4 + a4;
        ks[m] += dot(qk[kplane + ok], s);
        qs[m] += dot(qk[ok], s);
      }
    }
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let t = cs + i;
        var vc = v[t * dims[2].x + dims[2].y + hv * DV + col];
        if (V_SILU) { vc = vc * sigmoid(vc); }
        setx(c, i, gates[gplane + t * HV + hv] * (vc - exp(gates[2u * gplane + t * HV + hv]) * ks[m]));
      }
    }
    workgroupBarrier();
    var ds = array<f32, QPT>();
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        // T[i][j] = 0 for j > i (delta_chunk_solve writes the whole row), so the last vec4 may run past i
        let trow = (2u * bplane + (cs + i) * HV * CH + hv * CH) / 4u;
        var d = 0.0;
        for (var j4 = 0u; j4 <= i / 4u; j4++) { d += dot(ab[trow + j4], xrow(c, j4)); }
        ds[m] = d;
      }
    }
    let GL = gates[2u * gplane + (cs + n - 1u) * HV + hv];
#if TWO_BUF
    for (var m = 0u; m < QPT; m++) { let i = g + m * G; if (i < n) { sh_d[c * XS + i] = ds[m]; } }
    workgroupBarrier();
#else
    workgroupBarrier();   // every x read
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        setx(c, i, ds[m]);
        if (c == 0u) { sete(i, exp(GL - gates[2u * gplane + (cs + i) * HV + hv])); }
      }
    }
    workgroupBarrier();
#endif
#if PF
    // the next chunk's lines: per row, DK4 / 8 of q̂ and of k̂ (at least one), CH / 32 of T and of B
    var pf = array<f32, PF>();
    if (cs + CH < end) {
      let cn = cs + CH;
      let LQ = max(DK4 / 8u, 1u);
      let LT = max(CH / 32u, 1u);
      let per = 2u * (LQ + LT);
      for (var q = 0u; q < PF; q++) {
        let e = l.x + q * BV * G;
        if (e < min(CH, end - cn) * per) {
          let r = cn + e / per;
          let k = e % per;
          if (k < 2u * LQ) { pf[q] = qk[select(0u, kplane, k >= LQ) + (r * H + h) * DK4 + 8u * (k % LQ)].x; }
          else { pf[q] = ab[(select(bplane, 2u * bplane, k >= 2u * LQ + LT) + r * HV * CH + hv * CH) / 4u + 8u * ((k - 2u * LQ) % LT)].x; }
        }
      }
    }
#endif
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let t = cs + i;
        let Gi = gates[2u * gplane + t * HV + hv];
        let brow = (bplane + t * HV * CH + hv * CH) / 4u;   // B[i][j] = 0 for j > i (delta_chunk_kkt)
        var acc = scale * exp(Gi) * qs[m];
        for (var j4 = 0u; j4 <= i / 4u; j4++) { acc += dot(ab[brow + j4], drow(c, j4)); }
        o[t * HV * DV + hv * DV + col] = acc;
#if TWO_BUF
        sh_x[c * XS + i] = exp(GL - Gi) * sh_d[c * XS + i];
#endif
      }
    }
#if TWO_BUF
    workgroupBarrier();
#endif
    // (no barrier without TWO_BUF: this reads sh_x and sh_e as the o rows above do, and each thread's own rows of St)
    let eL = exp(GL);
    for (var a4 = g; a4 < DK4; a4 += G) {
      var s = St[c * RS + a4] * eL;
      let kr = kplane + (cs * H + h) * DK4 + a4;   // k̂ row cs + j at kr + j·H·DK4
#if TWO_BUF
      for (var j = 0u; j < n; j++) { s = fma(qk[kr + j * H * DK4], vec4f(xat(c, j)), s); }
#else
#if VX
      for (var j4 = 0u; j4 < n / 4u; j4++) {
        let u = sh_e[j4] * xrow(c, j4);
        let r = kr + 4u * j4 * H * DK4;
        s = fma(qk[r], vec4f(u.x), s);
        s = fma(qk[r + H * DK4], vec4f(u.y), s);
        s = fma(qk[r + 2u * H * DK4], vec4f(u.z), s);
        s = fma(qk[r + 3u * H * DK4], vec4f(u.w), s);
      }
      for (var j = n / 4u * 4u; j < n; j++) { s = fma(qk[kr + j * H * DK4], vec4f(eat(j) * xat(c, j)), s); }
#else
      for (var j = 0u; j < n; j++) { s = fma(qk[kr + j * H * DK4], vec4f(eat(j) * xat(c, j)), s); }
#endif
#endif
      St[c * RS + a4] = s;
    }
#if PF
    if (dims[3].z != 0u) { for (var q = 0u; q < PF; q++) { o[q] = pf[q]; } }   // never (the loads' only use)
#endif
    workgroupBarrier();
  }
  for (var a4 = g; a4 < DK4; a4 += G) {
    let a = base + 4u * a4 * DV;
    let s = St[c * RS + a4];
    state[a] = s.x;
    state[a + DV] = s.y;
    state[a + 2u * DV] = s.z;
    state[a + 3u * DV] = s.w;
  }
}
