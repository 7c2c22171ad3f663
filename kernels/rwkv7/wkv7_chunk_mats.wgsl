// wkv7_chunk_mats: the in-chunk interaction matrices of the chunked RWKV7 prefill (wkv7_chunk.ts). For each chunk
// (tokens cs..cs+n−1 of one sequence) and head h, rows t = cs + i and columns s = cs + j, with Γ from wkv7_chunk_prep
// (per-channel cumulative log-decay in the chunk; Γ_{cs−1} = 0) and d_t = e^{w_t}:
//   e_ij = e^{Γ_{t−1} − Γ_s}  (per channel, j < i; Γ_{t−1} − Γ_s ≤ 0: the decays of tokens s+1..t−1)
//   A_ab[i, j] = Σ_c α_tc·β_sc·e_ij,c          A_ak[i, j] = Σ_c α_tc·k̃_sc·e_ij,c           (j < i, else 0)
//   A_rb[i, j] = Σ_c r_tc·d_tc·β_sc·e_ij,c     A_rk[i, j] = Σ_c r_tc·d_tc·k̃_sc·e_ij,c      (j < i)
//   A_rb[i, i] = Σ_c r_tc·β_tc,                 A_rk[i, i] = Σ_c r_tc·k̃_tc,                 0 for j > i
// Bindings: step uniform; stepmeta u32 (cursors); proj [6, cap, C] (r, w read); pre [6, cap, C] (Γ's hi, α, β, k̃
// read); gk [5, cap, C] (Γ's lo at plane 4);
// mat [5, cap, H·CH] (planes A_ab, A_ak, A_rb, A_rk written at row t, column j; plane 4 = T, by wkv7_chunk_solve).
// Dispatch: (H, B, ⌈max len / CH⌉) workgroups of 256 threads = 16 × 16 blocks of (CH/16)² (i, j) pairs; the chunk's
// rows are staged KC channels at a time in workgroup memory (token-major). Blocks above the diagonal only write zeros.
// Runtime dims: C. Defines: D, CH, KC (seven CH × KC f32 blocks). f32; each sum runs over the channels in order c = 0..D−1.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(3) var<storage, read> pre: array<f32>;         // [6, cap, C]
@group(0) @binding(4) var<storage, read> gk: array<f32>;          // [5, cap, C] (plane 4: Γ's lo)
@group(0) @binding(5) var<storage, read_write> mat: array<f32>;   // [5, cap, H·CH]
@group(0) @binding(6) var<uniform> dims: vec4u;                   // C

const PB = CH / 16u;   // rows (and columns) per thread block

var<workgroup> sh_g: array<f32, CH * KC>;    // Γ (hi)
var<workgroup> sh_gl: array<f32, CH * KC>;   // Γ's lo
var<workgroup> sh_al: array<f32, CH * KC>;   // α
var<workgroup> sh_b: array<f32, CH * KC>;    // β
var<workgroup> sh_k: array<f32, CH * KC>;    // k̃
var<workgroup> sh_r: array<f32, CH * KC>;    // r
var<workgroup> sh_rd: array<f32, CH * KC>;   // r·d

@compute @workgroup_size(256)
fn wkv7_chunk_mats(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3u) {
  let C = dims.x;
  let H = C / D;
  let h = wg.x;
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let cu = cursor(seq);
  let end = cu.start + cu.len;
  let cs = cu.start + wg.z * CH;
  if (cs >= end) { return; }
  let n = min(CH, end - cs);
  let plane = step.cap * C;
  let ty = lid / 16u;
  let tx = lid % 16u;
  let live = tx <= ty;   // the block has pairs with j ≤ i
  var ab: array<f32, PB * PB>;
  var ak: array<f32, PB * PB>;
  var rb: array<f32, PB * PB>;
  var rk: array<f32, PB * PB>;
  for (var q = 0u; q < PB * PB; q++) { ab[q] = 0.0; ak[q] = 0.0; rb[q] = 0.0; rk[q] = 0.0; }
  for (var c0 = 0u; c0 < D; c0 += KC) {
    workgroupBarrier();
    for (var e = lid; e < CH * KC; e += 256u) {
      let tok = e / KC;
      var g = 0.0;
      var gl = 0.0;
      var al = 0.0;
      var b = 0.0;
      var k = 0.0;
      var r = 0.0;
      var rd = 0.0;
      if (tok < n) {
        let tc = (cs + tok) * C + h * D + c0 + e % KC;
        g = pre[tc];
        gl = gk[4u * plane + tc];
        al = pre[plane + tc];
        b = pre[2u * plane + tc];
        k = pre[3u * plane + tc];
        r = proj[tc];
        rd = r * exp(proj[plane + tc]);
      }
      sh_g[e] = g;
      sh_gl[e] = gl;
      sh_al[e] = al;
      sh_b[e] = b;
      sh_k[e] = k;
      sh_r[e] = r;
      sh_rd[e] = rd;
    }
    workgroupBarrier();
    if (live) {
      for (var cc = 0u; cc < KC; cc++) {
        for (var pi = 0u; pi < PB; pi++) {
          let i = ty * PB + pi;
          var gp = 0.0;
          var gpl = 0.0;
          if (i > 0u) { gp = sh_g[(i - 1u) * KC + cc]; gpl = sh_gl[(i - 1u) * KC + cc]; }
          let al = sh_al[i * KC + cc];
          let rd = sh_rd[i * KC + cc];
          for (var pj = 0u; pj < PB; pj++) {
            let j = tx * PB + pj;
            let q = pi * PB + pj;
            let b = sh_b[j * KC + cc];
            let k = sh_k[j * KC + cc];
            if (j < i) {
              let ex = exp((gp - sh_g[j * KC + cc]) + (gpl - sh_gl[j * KC + cc]));   // hi − hi: exact where it matters (Sterbenz)
              let be = b * ex;
              let ke = k * ex;
              ab[q] = fma(al, be, ab[q]);
              ak[q] = fma(al, ke, ak[q]);
              rb[q] = fma(rd, be, rb[q]);
              rk[q] = fma(rd, ke, rk[q]);
            } else if (j == i) {
              let r = sh_r[i * KC + cc];
              rb[q] = fma(r, b, rb[q]);
              rk[q] = fma(r, k, rk[q]);
            }
          }
        }
      }
    }
  }
  let mp = step.cap * H * CH;
  for (var pi = 0u; pi < PB; pi++) {
    let i = ty * PB + pi;
    if (i < n) {
      for (var pj = 0u; pj < PB; pj++) {
        let q = pi * PB + pj;
        let row = (cs + i) * H * CH + h * CH + tx * PB + pj;
        mat[row] = ab[q];
        mat[mp + row] = ak[q];
        mat[2u * mp + row] = rb[q];
        mat[3u * mp + row] = rk[q];
      }
    }
  }
}
