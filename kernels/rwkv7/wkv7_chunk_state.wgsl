// wkv7_chunk_state: the pass over each sequence's chunks of the chunked RWKV7 prefill (wkv7_chunk.ts). The recurrence
// of wkv7_recurrent, S_t = diag(e^{w_t})·S_{t−1} + β_t·u_tᵀ + k̃_t·v_tᵀ with u_t = S_{t−1}ᵀα_t and o_t = S_tᵀr_t,
// unrolled over a chunk (rows cs..cs+n−1, local i, j; value column c; incoming state S_in, a D × BV block in
// workgroup memory):
//   x_i = ag_i·S_in[:, c] + Σ_{j<i} A_ak[i, j]·v_jc          u_i = Σ_{j≤i} T_ij·x_j          (T = (I − A_ab)^{−1})
//   o_ic = rg_i·S_in[:, c] + Σ_{j≤i} A_rb[i, j]·u_j + A_rk[i, j]·v_jc
//   S[:, c] ← e^{Γ_{n−1}}·S_in[:, c] (e^{hi}·e^{lo}) + Σ_j bg_j·u_j + kg_j·v_jc
// (rg, ag, bg, kg: r, α, β, k̃ scaled by the in-chunk decays, wkv7_chunk_prep; A_*, T: wkv7_chunk_mats/_solve).
// Bindings: step uniform; stepmeta u32 (cursors); pre [6, cap, C] (Γ's hi, v read; plane 5 = o written); gk [5, cap, C]
// (rg, ag, bg, kg, Γ's lo); mat [5, cap, H·CH] (A_ab, A_ak, A_rb, A_rk, T); state [slots, H, D, D] f32 (S[i][j], i = key).
// Dispatch: (H·D/BV, B) workgroups of BV·G threads: thread (g, c) owns column c and the chunk rows i ≡ g (mod G) in
// the token phases, the state rows 4a4 … 4a4 + 3 for a4 ≡ g (mod G) in the update. S_in is held transposed (St[c][a4],
// vec4 over 4 key rows, row stride D/4 + 1 vec4 so neighbouring columns' 16-byte reads hit distinct banks), so the
// r/α and β/k̃ products are vec4 dot products and FMAs. Runtime dims: C. Defines: D, BV, G, CH, QPT = CH / G.
// f32; four barriers per chunk.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> pre: array<f32>;    // [6, cap, C]
@group(0) @binding(3) var<storage, read> gk: array<vec4f>;         // [5, cap, C] as vec4 (C, D, cap·C multiples of 4)
@group(0) @binding(4) var<storage, read> mat: array<f32>;          // [5, cap, H·CH]
@group(0) @binding(5) var<storage, read_write> state: array<f32>;  // [slots, H, D, D]
@group(0) @binding(6) var<uniform> dims: vec4u;                    // C

const D4: u32 = D / 4u;
const RS: u32 = D4 + 1u;
var<workgroup> St: array<vec4f, BV * RS>;  // S[4a4 .. 4a4+3][c] at c·RS + a4
var<workgroup> sh_v: array<f32, CH * BV>;  // v of the chunk
var<workgroup> sh_x: array<f32, CH * BV>;  // x
var<workgroup> sh_u: array<f32, CH * BV>;  // u

@compute @workgroup_size(BV * G)
fn wkv7_chunk_state(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let C = dims.x;
  let H = C / D;
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let nb = D / BV;
  let h = wg.x / nb;
  let c = l.x % BV;
  let g = l.x / BV;
  let col = (wg.x % nb) * BV + c;
  let cu = cursor(seq);
  let start = cu.start;
  let end = start + cu.len;
  let base = (cu.slot * H + h) * D * D + col;
  for (var a4 = g; a4 < D4; a4 += G) {
    let a = base + 4u * a4 * D;
    St[c * RS + a4] = vec4f(state[a], state[a + D], state[a + 2u * D], state[a + 3u * D]);
  }
  let P = step.cap * C;
  let P4 = P / 4u;
  let MP = step.cap * H * CH;
  for (var cs = start; cs < end; cs += CH) {
    let n = min(CH, end - cs);
    for (var j = g; j < n; j += G) { sh_v[j * BV + c] = pre[4u * P + (cs + j) * C + h * D + col]; }
    workgroupBarrier();
    var xs = array<f32, QPT>();
    var qs = array<f32, QPT>();
    for (var a4 = 0u; a4 < D4; a4++) {
      let s = St[c * RS + a4];
      for (var m = 0u; m < QPT; m++) {
        let r4 = ((cs + min(g + m * G, n - 1u)) * C + h * D) / 4u + a4;   // rows past the chunk repeat its last (never stored)
        xs[m] += dot(gk[P4 + r4], s);
        qs[m] += dot(gk[r4], s);
      }
    }
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let t = cs + i;
        let mrow = MP + t * H * CH + h * CH;
        var x = xs[m];
        for (var j = 0u; j < i; j++) { x = fma(mat[mrow + j], sh_v[j * BV + c], x); }
        sh_x[i * BV + c] = x;
      }
    }
    workgroupBarrier();
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let trow = 4u * MP + (cs + i) * H * CH + h * CH;
        var u = 0.0;
        for (var j = 0u; j <= i; j++) { u = fma(mat[trow + j], sh_x[j * BV + c], u); }
        sh_u[i * BV + c] = u;
      }
    }
    workgroupBarrier();
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let t = cs + i;
        let mrow = t * H * CH + h * CH;
        var ou = 0.0;
        var ov = 0.0;
        for (var j = 0u; j <= i; j++) {
          ou = fma(mat[2u * MP + mrow + j], sh_u[j * BV + c], ou);
          ov = fma(mat[3u * MP + mrow + j], sh_v[j * BV + c], ov);
        }
        pre[5u * P + t * C + h * D + col] = qs[m] + (ou + ov);
      }
    }
    let lrow = (cs + n - 1u) * C + h * D;
    for (var a4 = g; a4 < D4; a4 += G) {
      var su = vec4f(0.0);
      var sv = vec4f(0.0);
      for (var j = 0u; j < n; j++) {
        let k4 = ((cs + j) * C + h * D) / 4u + a4;
        su = fma(gk[2u * P4 + k4], vec4f(sh_u[j * BV + c]), su);
        sv = fma(gk[3u * P4 + k4], vec4f(sh_v[j * BV + c]), sv);
      }
      let a = lrow + 4u * a4;
      let hi = vec4f(pre[a], pre[a + 1u], pre[a + 2u], pre[a + 3u]);
      St[c * RS + a4] = St[c * RS + a4] * (exp(hi) * exp(gk[4u * P4 + a / 4u])) + (su + sv);
    }
    workgroupBarrier();
  }
  for (var a4 = g; a4 < D4; a4 += G) {
    let a = base + 4u * a4 * D;
    let s = St[c * RS + a4];
    state[a] = s.x;
    state[a + D] = s.y;
    state[a + 2u * D] = s.z;
    state[a + 3u * D] = s.w;
  }
}
