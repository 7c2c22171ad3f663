// delta_chunk_solve: the UT transform of the chunked delta rule (spec-deltanet-attention-qwen3next.md §10 step 3):
// T = (I + A)^{−1} per chunk and value head, by forward substitution, one column per thread:
//   T_jj = 1,  T_ij = −Σ_{m=j..i−1} A_im·T_mj  (i > j),  T_ij = 0 (i < j).
// Bindings: step uniform; stepmeta u32 (cursors); ab [3, cap, HV·CH] (plane A read; T written into plane 2, row
// t = token cs + i). Dispatch: one workgroup of CH threads (thread = column j) per (sequence, chunk, value head),
// b · MC · HV workgroups (2-D grid; chunks past a sequence's end return at once). A (the chunk's n rows) and T sit
// in workgroup memory (2 · CH² floats: 32 KiB at CH = 64); each thread reads only its own column of T, so the
// substitution needs no barrier. Runtime dims: HV, MC. Defines: CH. f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> ab: array<f32>;     // [3, cap, HV·CH]
@group(0) @binding(3) var<uniform> dims: vec4u;                    // HV, MC

var<workgroup> As: array<f32, CH * CH>;   // A[i][m] at i·CH + m (read by all threads at once: broadcast)
var<workgroup> Ts: array<f32, CH * CH>;   // T[i][j] at i·CH + j (thread j's column)

@compute @workgroup_size(CH)
fn delta_chunk_solve(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let HV = dims.x;
  let wid = wg.x + wg.y * ng.x;
  let per_seq = dims.y * HV;
  let sq = wid / per_seq;
  if (sq >= step.b) { return; }
  let c = (wid % per_seq) / HV;
  let hv = (wid % per_seq) % HV;
  let cu = cursor(sq);
  if (c * CH >= cu.len) { return; }
  let cs = cu.start + c * CH;
  let n = min(CH, cu.len - c * CH);
  let j = l.x;
  for (var i = 0u; i < n; i++) { As[i * CH + j] = ab[(cs + i) * HV * CH + hv * CH + j]; }
  workgroupBarrier();
  let tplane = 2u * step.cap * HV * CH;
  for (var i = 0u; i < n; i++) {
    var v = 0.0;
    if (i == j) { v = 1.0; }
    if (i > j) {
      for (var m = j; m < i; m++) { v = fma(-As[i * CH + m], Ts[m * CH + j], v); }
    }
    Ts[i * CH + j] = v;
    ab[tplane + (cs + i) * HV * CH + hv * CH + j] = v;
  }
}
