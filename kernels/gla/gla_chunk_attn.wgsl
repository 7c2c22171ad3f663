// gla_chunk_attn: intra-chunk scores of the chunked GLA prefill (spec-rwkv7-gla-abc.md §2.4, chunk_gla):
// for token t (query head h, kv head hk) and each token s of t's chunk,
//   A[t][s] = Σ_i qf_ti · kf_si · exp(B_ti − B_si)  for s ≤ t (B_ti − B_si ≤ 0: decays only shrink), 0 for s > t.
// Bindings: step uniform; stepmeta u32 (cursors); qb [2, cap, H·DK] (qf, qg); kb [3, cap, HKV·DK] (B, kf, kg);
// A [cap, H·CH].
// Dispatch: one workgroup of 256 threads per (sequence, chunk, query head), b · MC · H workgroups (2-D grid, MC =
// the longest sequence's chunks; chunks past a sequence's end return at once). The chunk's qf, B (query side) and
// kf, B (key side) pass through workgroup memory in slabs of SL key dims; thread (ty, tx) owns the 4 × 4 block of
// rows 4ty … 4ty + 3 and columns 4tx … 4tx + 3 (a block wholly above the diagonal only writes zeros). Each sum runs
// over i in order, as before. Runtime dims: H, HKV, MC. Defines: DK, CH = 64, SL, HAS_GATE. f32.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qb: array<f32>;
@group(0) @binding(3) var<storage, read> kb: array<f32>;
@group(0) @binding(4) var<storage, read_write> A: array<f32>;    // [cap, H·CH]
@group(0) @binding(5) var<uniform> dims: vec4u;                  // H, HKV, MC

const WG: u32 = 256u;
const SP: u32 = SL + 1u;   // slab row stride: the rows 4tx of neighbouring threads in distinct banks

var<workgroup> sq: array<f32, CH * SP>;    // qf[t][i]
var<workgroup> sbq: array<f32, CH * SP>;   // B[t][i]
var<workgroup> sk: array<f32, CH * SP>;    // kf[s][i]

@compute @workgroup_size(WG)
fn gla_chunk_attn(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.x;
  let HKV = dims.y;
  let lid = l.x;
  let wid = wg.x + wg.y * ng.x;
  let per_seq = dims.z * H;
  let sqn = wid / per_seq;
  if (sqn >= step.b) { return; }
  let c = (wid % per_seq) / H;
  let h = (wid % per_seq) % H;
  let cu = cursor(sqn);
  if (c * CH >= cu.len) { return; }
  let cs = cu.start + c * CH;
  let n = min(CH, cu.len - c * CH);
  let hk = h / (H / HKV);
  let KW = HKV * DK;
  let kplane = step.cap * KW;
  let ty = lid / 16u;
  let tx = lid % 16u;
  let live = 4u * tx <= 4u * ty + 3u;   // some column of the block is at or below the diagonal
  var acc = array<f32, 16>();
  for (var d0 = 0u; d0 < DK; d0 += SL) {
    workgroupBarrier();   // the previous slab is read
    for (var e = lid; e < CH * SL; e += WG) {
      let r = e / SL;
      let d = e % SL;
      var qv = 0.0;
      var bv = 0.0;
      var kv = 0.0;
      if (r < n) {
        let t = cs + r;
        qv = qb[(t * H + h) * DK + d0 + d];
        bv = kb[t * KW + hk * DK + d0 + d];
        kv = kb[kplane + t * KW + hk * DK + d0 + d];
      }
      sq[r * SP + d] = qv;
      sbq[r * SP + d] = bv;
      sk[r * SP + d] = kv;
    }
    workgroupBarrier();
    if (live) {
      for (var d = 0u; d < SL; d++) {
        var kc: array<f32, 4>;
        var bc: array<f32, 4>;
        for (var j = 0u; j < 4u; j++) { kc[j] = sk[(4u * tx + j) * SP + d]; bc[j] = sbq[(4u * tx + j) * SP + d]; }
        for (var i = 0u; i < 4u; i++) {
          let qr = sq[(4u * ty + i) * SP + d];
          let br = sbq[(4u * ty + i) * SP + d];
          for (var j = 0u; j < 4u; j++) {
            if (HAS_GATE) {
              acc[4u * i + j] = fma(qr * kc[j], exp(br - bc[j]), acc[4u * i + j]);
            } else {
              acc[4u * i + j] = fma(qr, kc[j], acc[4u * i + j]);
            }
          }
        }
      }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let t = 4u * ty + i;
    if (t < n) {
      for (var j = 0u; j < 4u; j++) {
        let s = 4u * tx + j;
        A[((cs + t) * H + h) * CH + s] = select(0.0, acc[4u * i + j], s <= t);
      }
    }
  }
}
