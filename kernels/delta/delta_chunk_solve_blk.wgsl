// delta_chunk_solve_blk: the UT transform of the chunked delta rule (spec-deltanet-attention-qwen3next.md §10 step 3),
// T = (I + A)^{−1} per chunk and value head (A strictly lower, from delta_chunk_kkt), blocked: the SB × SB diagonal
// blocks by forward substitution (a thread a column of a block), then the off-diagonal blocks by doubling — for
// s = SB, 2·SB, …, CH / 2 and each pair of s × s diagonal blocks T11, T22 already inverted (rows o..o+s−1 and
// o+s..o+2s−1, o = 2s·p), the block below them: T21 = −T22·(A21·T11), the inverse of [I + A11, 0; A21, I + A22].
// The same T as delta_chunk_solve's row-by-row substitution up to f32 rounding (sums in another order); its serial
// chain is SB·(SB − 1)/2 + Σ_s 2·s·(its elements a thread) FMAs instead of CH·(CH − 1)/2.
// Bindings: step uniform; stepmeta u32 (cursors); ab [3, cap, HV·CH] (plane A read; T written into plane 2, row
// t = token cs + i, the whole row: zeros above the diagonal). Dispatch: one workgroup of WG threads per (sequence,
// chunk, value head), b · MC · HV workgroups (2-D grid; chunks past a sequence's end return at once). A and T in
// workgroup memory (2 · CH² f32: 32 KiB at CH = 64); rows ≥ n of A are zero (their T rows are identity rows, never
// stored; T's rows < n depend only on rows < n). A level's products are held in registers across a barrier before
// they are stored (X = A21·T11 parks in the T21 block, then T21 overwrites it).
// Runtime dims: HV, MC. Defines: CH, SB (CH / SB a power of two), WG (a multiple of CH, ≥ CH / SB · SB). f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> ab: array<f32>;     // [3, cap, HV·CH]
@group(0) @binding(3) var<uniform> dims: vec4u;                    // HV, MC

var<workgroup> As: array<f32, CH * CH>;   // A[i][m] at i·CH + m
var<workgroup> Ts: array<f32, CH * CH>;   // T[i][j] at i·CH + j
const EPT: u32 = (CH * CH / 4u + WG - 1u) / WG;   // the most elements of one level a thread computes (CH·s/2 ≤ CH²/4)

@compute @workgroup_size(WG)
fn delta_chunk_solve_blk(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
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
  let tid = l.x;
  for (var e = tid; e < CH * CH; e += WG) {
    var a = 0.0;
    if (e / CH < n) { a = ab[(cs + e / CH) * HV * CH + hv * CH + e % CH]; }
    As[e] = a;
    Ts[e] = 0.0;   // the blocks above the diagonal stay zero
  }
  workgroupBarrier();
  // the diagonal blocks: thread (b, j) the column j of block b, rows in order (it reads only its own column of T)
  if (tid < CH) {
    let o = (tid / SB) * SB;
    let j = tid % SB;
    for (var r = 0u; r < SB; r++) {
      var v = 0.0;
      if (r == j) { v = 1.0; }
      if (r > j) {
        for (var m = j; m < r; m++) { v = fma(-As[(o + r) * CH + o + m], Ts[(o + m) * CH + o + j], v); }
      }
      Ts[(o + r) * CH + o + j] = v;
    }
  }
  // doubling: pairs of inverted s-blocks → their 2s-block (every element of the level's s × s blocks below the pairs)
  for (var s = SB; s < CH; s *= 2u) {
    let per = CH * s / 2u;   // CH / (2s) pairs of s² elements
    var x = array<f32, EPT>();
    workgroupBarrier();   // T11, T22 complete
    for (var q = 0u; q < EPT; q++) {
      let e = tid + q * WG;
      if (e < per) {
        let o = (e / (s * s)) * 2u * s;
        let r = (e % (s * s)) / s;
        let j = e % s;
        var acc = 0.0;   // (A21·T11)[r][j] = Σ_{m ≥ j} A[o+s+r][o+m]·T[o+m][o+j]
        for (var m = j; m < s; m++) { acc = fma(As[(o + s + r) * CH + o + m], Ts[(o + m) * CH + o + j], acc); }
        x[q] = acc;
      }
    }
    workgroupBarrier();
    for (var q = 0u; q < EPT; q++) {
      let e = tid + q * WG;
      if (e < per) {
        let o = (e / (s * s)) * 2u * s;
        Ts[(o + s + (e % (s * s)) / s) * CH + o + e % s] = x[q];
      }
    }
    workgroupBarrier();
    for (var q = 0u; q < EPT; q++) {
      let e = tid + q * WG;
      if (e < per) {
        let o = (e / (s * s)) * 2u * s;
        let r = (e % (s * s)) / s;
        let j = e % s;
        var acc = 0.0;   // −(T22·X)[r][j] = −Σ_{m ≤ r} T[o+s+r][o+s+m]·X[m][j]
        for (var m = 0u; m <= r; m++) { acc = fma(-Ts[(o + s + r) * CH + o + s + m], Ts[(o + s + m) * CH + o + j], acc); }
        x[q] = acc;
      }
    }
    workgroupBarrier();
    for (var q = 0u; q < EPT; q++) {
      let e = tid + q * WG;
      if (e < per) {
        let o = (e / (s * s)) * 2u * s;
        Ts[(o + s + (e % (s * s)) / s) * CH + o + e % s] = x[q];
      }
    }
  }
  workgroupBarrier();
  let tplane = 2u * step.cap * HV * CH;
  for (var e = tid; e < n * CH; e += WG) { ab[tplane + (cs + e / CH) * HV * CH + hv * CH + e % CH] = Ts[e]; }
}
