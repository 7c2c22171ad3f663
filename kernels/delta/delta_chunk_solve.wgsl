// delta_chunk_solve: the UT transform of the chunked delta rule (spec-deltanet-attention-qwen3next.md §10 step 3):
// T = (I + A)^{−1} per chunk and value head, by forward substitution, one column per thread:
//   T_jj = 1,  T_ij = −Σ_{m=j..i−1} A_im·T_mj  (i > j),  T_ij = 0 (i < j).
// Bindings: step uniform; stepmeta u32 (token→sequence, cursors); ab [3, cap, HV·CH] (planes A, B read; T written
// into plane 2, row t = token cs + i). Dispatch: one workgroup of CH threads (thread = column j) per
// (token, value head), 2-D grid; only tokens that start a chunk do work. Runtime dims: HV. Defines: CH. f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> ab: array<f32>;     // [3, cap, HV·CH]
@group(0) @binding(3) var<uniform> dims: vec4u;                    // HV

@compute @workgroup_size(CH)
fn delta_chunk_solve(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let HV = dims.x;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * HV) { return; }
  let cs = idx / HV;
  let hv = idx % HV;
  let cu = cursor(seq_of(cs));
  let start = cu.start;
  let end = start + cu.len;
  if ((cs - start) % CH != 0u) { return; }
  let n = min(CH, end - cs);
  let j = l.x;
  if (j >= n) { return; }
  let tplane = 2u * step.cap * HV * CH;
  var col: array<f32, CH>;
  for (var i = 0u; i < n; i++) {
    var v = 0.0;
    if (i == j) { v = 1.0; }
    if (i > j) {
      let arow = (cs + i) * HV * CH + hv * CH;
      for (var m = j; m < i; m++) { v = fma(-ab[arow + m], col[m], v); }
    }
    col[i] = v;
    ab[tplane + (cs + i) * HV * CH + hv * CH + j] = v;
  }
}
