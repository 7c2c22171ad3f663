// delta_chunk_kkt: the in-chunk interaction matrices of the chunked delta rule (spec-deltanet-attention-qwen3next.md
// §10 steps 1–2 and the Q·Kᵀ part of step 4). Chunks of CH tokens start at each sequence's first token; for token t
// (local index i in its chunk starting at row cs) and value head hv (q/k head ⌊hv / r⌋), with G the chunk-local
// cumulative log-decay:
//   G[t] = Σ_{s=cs..t} g_s
//   A[t, j] = β_t·(k̂_t·k̂_{cs+j})·exp(G_t − G_{cs+j})           for j < i, else 0   (strictly lower)
//   B[t, j] = DK^{−1/2}·(q̂_t·k̂_{cs+j})·exp(G_t − G_{cs+j})     for j ≤ i, else 0   (masked before exp)
// Bindings: step uniform; stepmeta u32 (cursors); qk [2, cap, H·DK] (q̂, k̂) as vec4; gates [3, cap, HV]
// (g, β read; G written); ab [3, cap, HV·CH] (planes A, B written here; T later by delta_chunk_solve).
// Dispatch: one workgroup of WG = 256 threads per (sequence, chunk, value head), b · MC · HV workgroups (2-D grid,
// MC = the longest sequence's chunks; chunks past a sequence's end return at once). The chunk's q̂ and k̂ pass
// through workgroup memory in slabs of SL vec4 columns; thread (ty, tx) accumulates rows 4ty … 4ty + 3 × columns
// tx + 16j (j < 4) of K̂·K̂ᵀ and Q̂·K̂ᵀ in registers. Runtime dims: H, HV, MC. Defines: DK4 = DK / 4, CH = 64, SL.
// f32; G summed sequentially in token order (the same sums for G_t and G_j).
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qk: array<vec4f>;         // [2, cap, H·DK]
@group(0) @binding(3) var<storage, read_write> gates: array<f32>;  // [3, cap, HV]
@group(0) @binding(4) var<storage, read_write> ab: array<f32>;     // [3, cap, HV·CH]
@group(0) @binding(5) var<uniform> dims: vec4u;                    // H, HV, MC

const WG: u32 = 256u;
const SR: u32 = SL + 1u;   // slab row stride (vec4): neighbouring rows' 16-byte reads in distinct banks

var<workgroup> ks: array<vec4f, CH * SR>;
var<workgroup> qs: array<vec4f, CH * SR>;
var<workgroup> gs: array<f32, CH>;
var<workgroup> Gs: array<f32, CH>;

@compute @workgroup_size(WG)
fn delta_chunk_kkt(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.x;
  let HV = dims.y;
  let lid = l.x;
  let wid = wg.x + wg.y * ng.x;
  let per_seq = dims.z * HV;
  let sq = wid / per_seq;
  if (sq >= step.b) { return; }
  let c = (wid % per_seq) / HV;
  let hv = (wid % per_seq) % HV;
  let cu = cursor(sq);
  if (c * CH >= cu.len) { return; }
  let cs = cu.start + c * CH;
  let n = min(CH, cu.len - c * CH);
  let h = hv / (HV / H);
  if (lid < CH) {
    var g = 0.0;
    if (lid < n) { g = gates[(cs + lid) * HV + hv]; }
    gs[lid] = g;
  }
  workgroupBarrier();
  if (lid < n) {
    var G = 0.0;
    for (var s = 0u; s <= lid; s++) { G += gs[s]; }
    Gs[lid] = G;
    gates[2u * step.cap * HV + (cs + lid) * HV + hv] = G;
  }
  let ty = lid / 16u;
  let tx = lid % 16u;
  let kplane = step.cap * H * DK4;
  var accA = array<f32, 16>();
  var accB = array<f32, 16>();
  for (var d0 = 0u; d0 < DK4; d0 += SL) {
    workgroupBarrier();   // the previous slab is read
    for (var e = lid; e < CH * SL; e += WG) {
      let r = e / SL;
      let d = e % SL;
      var kv = vec4f(0.0);
      var qv = vec4f(0.0);
      if (r < n) {
        let o = ((cs + r) * H + h) * DK4 + d0 + d;
        kv = qk[kplane + o];
        qv = qk[o];
      }
      ks[r * SR + d] = kv;
      qs[r * SR + d] = qv;
    }
    workgroupBarrier();
    for (var d = 0u; d < SL; d++) {
      let c0 = ks[tx * SR + d];
      let c1 = ks[(tx + 16u) * SR + d];
      let c2 = ks[(tx + 32u) * SR + d];
      let c3 = ks[(tx + 48u) * SR + d];
      for (var i = 0u; i < 4u; i++) {
        let kr = ks[(4u * ty + i) * SR + d];
        let qr = qs[(4u * ty + i) * SR + d];
        accA[4u * i] += dot(kr, c0);
        accA[4u * i + 1u] += dot(kr, c1);
        accA[4u * i + 2u] += dot(kr, c2);
        accA[4u * i + 3u] += dot(kr, c3);
        accB[4u * i] += dot(qr, c0);
        accB[4u * i + 1u] += dot(qr, c1);
        accB[4u * i + 2u] += dot(qr, c2);
        accB[4u * i + 3u] += dot(qr, c3);
      }
    }
  }
  let scale = inverseSqrt(f32(DK4 * 4u));
  for (var i = 0u; i < 4u; i++) {
    let t = 4u * ty + i;
    if (t < n) {
      let beta = gates[step.cap * HV + (cs + t) * HV + hv];
      let Gt = Gs[t];
      for (var j = 0u; j < 4u; j++) {
        let col = tx + 16u * j;
        var a = 0.0;
        var b = 0.0;
        if (col <= t) {
          let dec = exp(Gt - Gs[col]);
          b = accB[4u * i + j] * dec * scale;
          if (col < t) { a = beta * accA[4u * i + j] * dec; }
        }
        let row = (cs + t) * HV * CH + hv * CH + col;
        ab[row] = a;
        ab[step.cap * HV * CH + row] = b;
      }
    }
  }
}
