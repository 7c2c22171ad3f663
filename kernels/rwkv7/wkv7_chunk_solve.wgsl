// wkv7_chunk_solve: the WY/UT transform of the chunked RWKV7 prefill (wkv7_chunk.ts): T = (I − A_ab)^{−1} per chunk
// and head by forward substitution, one column per thread (A_ab strictly lower, from wkv7_chunk_mats):
//   T_jj = 1,  T_ij = Σ_{m=j..i−1} A_ab[i, m]·T_mj  (i > j),  T_ij = 0 (i < j).
// Then the chunk's removal reads u_i = α_iᵀ S_{i−1} satisfy u = T·(ag·S_in + A_ak·V) (wkv7_chunk_state).
// Bindings: step uniform; stepmeta u32 (cursors); mat [5, cap, H·CH] (plane 0 read, plane 4 = T written, row
// t = token cs + i). Dispatch: (H, B, ⌈max len / CH⌉) workgroups of CH threads (thread = column j), one per chunk
// and head; the chunk's A_ab staged in workgroup memory (CH² f32).
// Runtime dims: H. Defines: CH. f32 (each sum in four interleaved partial sums).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> mat: array<f32>;   // [5, cap, H·CH]
@group(0) @binding(3) var<uniform> dims: vec4u;                   // H

var<workgroup> sh_a: array<f32, CH * CH>;   // the chunk's A_ab rows

@compute @workgroup_size(CH)
fn wkv7_chunk_solve(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let H = dims.x;
  let h = wg.x;
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let cu = cursor(seq);
  let end = cu.start + cu.len;
  let cs = cu.start + wg.z * CH;
  if (cs >= end) { return; }
  let n = min(CH, end - cs);
  let j = l.x;
  for (var i = 0u; i < n; i++) { sh_a[i * CH + j] = mat[(cs + i) * H * CH + h * CH + j]; }
  workgroupBarrier();
  if (j >= n) { return; }
  let tplane = 4u * step.cap * H * CH;
  var col: array<f32, CH>;
  for (var i = 0u; i < n; i++) {
    var v = 0.0;
    if (i == j) { v = 1.0; }
    if (i > j) {   // four partial sums (m ≡ j, j+1, j+2, j+3 mod 4): four independent FMA chains
      var p = vec4f(0.0);
      var m = j;
      for (; m + 4u <= i; m += 4u) {
        let ar = i * CH + m;
        p = fma(vec4f(sh_a[ar], sh_a[ar + 1u], sh_a[ar + 2u], sh_a[ar + 3u]), vec4f(col[m], col[m + 1u], col[m + 2u], col[m + 3u]), p);
      }
      for (; m < i; m++) { p.x = fma(sh_a[i * CH + m], col[m], p.x); }
      v = (p.x + p.y) + (p.z + p.w);
    }
    col[i] = v;
    mat[tplane + (cs + i) * H * CH + h * CH + j] = v;
  }
}
