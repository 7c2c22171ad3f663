// delta_chunk_kkt: the in-chunk interaction matrices of the chunked delta rule (spec-deltanet-attention-qwen3next.md
// §10 steps 1–2 and the Q·Kᵀ part of step 4). Chunks of CH tokens start at each sequence's first token; for token t
// (local index i in its chunk starting at row cs) and value head hv (q/k head ⌊hv / r⌋), with G the chunk-local
// cumulative log-decay:
//   G[t] = Σ_{s=cs..t} g_s
//   A[t, j] = β_t·(k̂_t·k̂_{cs+j})·exp(G_t − G_{cs+j})           for j < i, else 0   (strictly lower)
//   B[t, j] = DK^{−1/2}·(q̂_t·k̂_{cs+j})·exp(G_t − G_{cs+j})     for j ≤ i, else 0   (masked before exp)
// Bindings: step uniform; stepmeta u32 (token→sequence, cursors); qk [2, cap, H·DK] (q̂, k̂); gates [3, cap, HV]
// (g, β read; G written); ab [3, cap, HV·CH] (planes A, B written here; T later by delta_chunk_solve).
// Dispatch: one workgroup of CH threads (thread j) per (token, value head), 2-D grid. Runtime dims: H, HV.
// Defines: DK, CH. f32; G summed sequentially in token order (the same sums for G_t and G_j).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qk: array<f32>;           // [2, cap, H·DK]
@group(0) @binding(3) var<storage, read_write> gates: array<f32>;  // [3, cap, HV]
@group(0) @binding(4) var<storage, read_write> ab: array<f32>;     // [3, cap, HV·CH]
@group(0) @binding(5) var<uniform> dims: vec4u;                    // H, HV

@compute @workgroup_size(CH)
fn delta_chunk_kkt(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.x;
  let HV = dims.y;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * HV) { return; }
  let t = idx / HV;
  let hv = idx % HV;
  let h = hv / (HV / H);
  let start = cursor(seq_of(t)).start;
  let i = (t - start) % CH;
  let cs = t - i;
  let j = l.x;
  var Gt = 0.0;
  var Gj = 0.0;
  for (var s = 0u; s <= i; s++) {
    Gt += gates[(cs + s) * HV + hv];
    if (s == j) { Gj = Gt; }
  }
  if (j == 0u) { gates[2u * step.cap * HV + t * HV + hv] = Gt; }
  var a = 0.0;
  var b = 0.0;
  if (j <= i) {
    let kplane = step.cap * H * DK;
    let ot = t * H * DK + h * DK;
    let oj = (cs + j) * H * DK + h * DK;
    var kk = 0.0;
    var qk_ = 0.0;
    for (var c = 0u; c < DK; c++) {
      let kj = qk[kplane + oj + c];
      kk = fma(qk[kplane + ot + c], kj, kk);
      qk_ = fma(qk[ot + c], kj, qk_);
    }
    let dec = exp(Gt - Gj);
    b = qk_ * dec * inverseSqrt(f32(DK));
    if (j < i) { a = gates[step.cap * HV + t * HV + hv] * kk * dec; }
  }
  let row = t * HV * CH + hv * CH + j;
  ab[row] = a;
  ab[step.cap * HV * CH + row] = b;
}
