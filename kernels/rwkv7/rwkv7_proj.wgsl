// rwkv7_proj: RWKV7's seven projections of the mixed token (spec-rwkv7-gla-abc.md §1.3 step 4) as one decode GEMV
// over four weights, each output row reading its own mix plane: segments s = 0..6 are
//   r = xr·Wrᵀ, k = xk·Wkᵀ, v = xv·Wvᵀ (into proj planes 0, 2, 3), and the LoRA down-projections
//   tanh(xw·W1ᵀ), xa·A1ᵀ, σ(xg·G1ᵀ), xv·V1ᵀ (into lora columns [0, RW), [RW, +RA), [+RA, +RG), [+RG, R)),
// the four down-projections stacked in Wl [R, C]. Mix planes: r 0, w 1, k 2, v 3, a 4, g 5.
// Bindings: step uniform; x [6, cap, C] f32 (read as vec4f); Wr, Wk, Wv [C, C], Wl [R, C] packed (16-byte units:
// 8 bf16/f16 or 4 f32); proj [6, cap, C]; lora [N, R]; dims: C, 0, R, 0 | segment ends (workgroup counts,
// cumulative) e0..e3 | e4..e6 | RW, RA, RG, RV.
// Dispatch: workgroups of WG threads, TPR lanes (a power of two) per output row (split-K), WG / TPR rows per
// workgroup; each segment starts at a fresh workgroup (grid over x, and y past 65535); z over blocks of RB rows.
// A segment with no workgroups is skipped ('split' runs only the LoRA segments here). Each lane takes units
// lane, lane + TPR, … of its row (U per row, a define), UNROLL in flight: the loads of one batch are issued from the
// segment's own binding (a switch outside the batch) before any FMA. As matmul_gemv_vec, the reduction over the TPR
// lanes is SG_RED (subgroupShuffleXor / subgroupAdd, then workgroup memory across subgroups when TPR > sg; lanes of a
// 1-D workgroup consecutive in subgroups of size sg ≥ SGS) or, portable, a workgroup-memory tree.
// Defines: WG, TPR, U, RB, UNROLL, SG_RED, SGS, W_F32, W_F16. Accumulates in f32. The weight loads, the unit's dot
// product and the segment table: rwkv7_gemv.wgsl (shared with rwkv7_proj_ln).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;        // [6, cap, C / 4]
@group(0) @binding(2) var<storage, read> Wr: array<vec4u>;
@group(0) @binding(3) var<storage, read> Wk: array<vec4u>;
@group(0) @binding(4) var<storage, read> Wv: array<vec4u>;
@group(0) @binding(5) var<storage, read> Wl: array<vec4u>;
@group(0) @binding(6) var<storage, read_write> proj: array<f32>; // [6, cap, C]
@group(0) @binding(7) var<storage, read_write> lora: array<f32>; // [N, R]
@group(0) @binding(8) var<uniform> dims: array<vec4u, 4>;


#include "rwkv7_gemv.wgsl"

// Unit u of a W row (as loaded) times the same unit of x row `xr` (its first vec4f index).
fn dot_unit(w: vec4u, xr: u32, u: u32) -> f32 {
  return wdot(w, x[xr + XPU * u], x[xr + XPU * u + XPU - 1u]);
}

@compute @workgroup_size(WG)
#if SG_RED
fn rwkv7_proj(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn rwkv7_proj(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let sg = 1u;
#endif
  let C = dims[0].x;
  let R = dims[0].z;
  let rows = step.n;
  let wg = g.x + g.y * ng.x;
  var s = 0u;
  while (s < 7u && wg >= seg_end(s)) { s++; }
  if (s == 7u) { return; }   // uniform per workgroup
  var begin = 0u;
  if (s > 0u) { begin = seg_end(s - 1u); }
  let sgm = segment(s, C);
  let len = sgm.len;
  let xp = sgm.xp;
  let lofs = sgm.lofs;
  let b = min(s, 3u);
  let lane = li % TPR;
  let sub = li / TPR;
  let o = (wg - begin) * (WG / TPR) + sub;
  let r0 = g.z * RB;
  var acc: array<f32, RB>;
  var xr: array<u32, RB>;
  // x rows past the step's last are clamped to it: their sums are computed and never written
  for (var r = 0u; r < RB; r++) { xr[r] = (xp * step.cap + min(r0 + r, rows - 1u)) * (C / 4u); }
  if (o < len) {
    let base = (lofs + o) * U;
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      let wv = load_batch(b, base + u);   // all loads in flight first
      for (var k = 0u; k < UNROLL; k++) {
        for (var r = 0u; r < RB; r++) { acc[r] += dot_unit(wv[k], xr[r], u + k * TPR); }
      }
    }
    for (; u < U; u += TPR) {
      let w0 = load_one(b, base + u);
      for (var r = 0u; r < RB; r++) { acc[r] += dot_unit(w0, xr[r], u); }
    }
  }

  acc = group_sum(acc, li, sg);

  // every lane of the row now holds its sums: lane j writes batch rows j, j + TPR, …
  if (o < len) {
    for (var r = 0u; r < RB; r++) {
      let row = r0 + r;
      if (r % TPR == lane && row < rows) {
        var v = acc[r];
        if (s < 3u) {
          proj[(xp * step.cap + row) * C + o] = v;
        } else {
          if (s == 3u) { v = tanh_stable(v); }
          if (s == 5u) { v = sigmoid(v); }
          lora[row * R + lofs + o] = v;
        }
      }
    }
  }
}
