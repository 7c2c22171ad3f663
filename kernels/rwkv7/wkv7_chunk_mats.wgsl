// wkv7_chunk_mats: the in-chunk interaction matrices of the chunked RWKV7 prefill (wkv7_chunk.ts). For token t (local
// index i in its chunk starting at row cs), head h and each token s = cs + j of the chunk, with Γ from wkv7_chunk_prep
// (per-channel cumulative log-decay in the chunk; Γ_{cs−1} = 0) and d_t = e^{w_t}:
//   e_tj = e^{Γ_{t−1} − Γ_s}  (per channel, j < i; Γ_{t−1} − Γ_s ≤ 0: the decays of tokens s+1..t−1)
//   A_ab[t, j] = Σ_c α_tc·β_sc·e_tj,c          A_ak[t, j] = Σ_c α_tc·k̃_sc·e_tj,c           (j < i, else 0)
//   A_rb[t, j] = Σ_c r_tc·d_tc·β_sc·e_tj,c     A_rk[t, j] = Σ_c r_tc·d_tc·k̃_sc·e_tj,c      (j < i)
//   A_rb[t, i] = Σ_c r_tc·β_tc,                 A_rk[t, i] = Σ_c r_tc·k̃_tc,                 0 for j > i
// Bindings: step uniform; stepmeta u32 (token → sequence, cursors); proj [6, cap, C] (r, w read); pre [6, cap, C]
// (Γ, α, β, k̃ read); mat [5, cap, H·CH] (planes A_ab, A_ak, A_rb, A_rk written; plane 4 = T, by wkv7_chunk_solve).
// Dispatch: one workgroup of CH threads (thread j = column) per (token, head), 2-D grid. Runtime dims: C.
// Defines: D, CH. f32, serial over the D channels.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> proj: array<f32>;        // [6, cap, C]
@group(0) @binding(3) var<storage, read> pre: array<f32>;         // [6, cap, C]
@group(0) @binding(4) var<storage, read_write> mat: array<f32>;   // [5, cap, H·CH]
@group(0) @binding(5) var<uniform> dims: vec4u;                   // C

var<workgroup> sh_al: array<f32, D>;   // α_t
var<workgroup> sh_rd: array<f32, D>;   // r_t·d_t
var<workgroup> sh_r: array<f32, D>;    // r_t
var<workgroup> sh_g: array<f32, D>;    // Γ_{t−1}

@compute @workgroup_size(CH)
fn wkv7_chunk_mats(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = dims.x;
  let H = C / D;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * H) { return; }
  let t = idx / H;
  let h = idx % H;
  let start = cursor(seq_of(t)).start;
  let i = (t - start) % CH;
  let cs = t - i;
  let plane = step.cap * C;
  for (var c = l.x; c < D; c += CH) {
    let tc = t * C + h * D + c;
    let r = proj[tc];
    sh_r[c] = r;
    sh_rd[c] = r * exp(proj[plane + tc]);
    sh_al[c] = pre[plane + tc];
    var gp = 0.0;
    if (i > 0u) { gp = pre[tc - C]; }
    sh_g[c] = gp;
  }
  workgroupBarrier();
  let j = l.x;
  var ab = 0.0;
  var ak = 0.0;
  var rb = 0.0;
  var rk = 0.0;
  let so = (cs + j) * C + h * D;
  if (j < i) {
    for (var c = 0u; c < D; c++) {
      let e = exp(sh_g[c] - pre[so + c]);
      let be = pre[2u * plane + so + c] * e;
      let ke = pre[3u * plane + so + c] * e;
      ab = fma(sh_al[c], be, ab);
      ak = fma(sh_al[c], ke, ak);
      rb = fma(sh_rd[c], be, rb);
      rk = fma(sh_rd[c], ke, rk);
    }
  } else if (j == i) {
    for (var c = 0u; c < D; c++) {
      rb = fma(sh_r[c], pre[2u * plane + so + c], rb);
      rk = fma(sh_r[c], pre[3u * plane + so + c], rk);
    }
  }
  let mp = step.cap * H * CH;
  let row = t * H * CH + h * CH + j;
  mat[row] = ab;
  mat[mp + row] = ak;
  mat[2u * mp + row] = rb;
  mat[3u * mp + row] = rk;
}
