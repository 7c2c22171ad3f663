// gla_chunk_attn: intra-chunk scores of the chunked GLA prefill (spec-rwkv7-gla-abc.md §2.4, chunk_gla):
// for token t (query head h, kv head hk) and each token s of t's chunk,
//   A[t][s] = Σ_i qf_ti · kf_si · exp(B_ti − B_si)  for s ≤ t (B_ti − B_si ≤ 0: decays only shrink), 0 for s > t.
// Bindings: step uniform; stepmeta u32 (token → sequence, cursors); qb [2, cap, H·DK] (qf, qg);
// kb [3, cap, HKV·DK] (B, kf, kg); A [cap, H·CH].
// Dispatch: one workgroup of CH threads per (token, query head) (2-D grid); thread s owns column s.
// Runtime dims: H, HKV. Defines: DK, CH, HAS_GATE. f32, serial over DK.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qb: array<f32>;
@group(0) @binding(3) var<storage, read> kb: array<f32>;
@group(0) @binding(4) var<storage, read_write> A: array<f32>;    // [cap, H·CH]
@group(0) @binding(5) var<uniform> dims: vec4u;                  // H, HKV

var<workgroup> sh_q: array<f32, DK>;
var<workgroup> sh_b: array<f32, DK>;

@compute @workgroup_size(CH)
fn gla_chunk_attn(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.x;
  let HKV = dims.y;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * H) { return; }
  let t = idx / H;
  let h = idx % H;
  let hk = h / (H / HKV);
  let seq = seq_of(t);
  let start = cursor(seq).start;
  let cs = start + ((t - start) / CH) * CH;
  let KW = HKV * DK;
  let kplane = step.cap * KW;
  for (var i = l.x; i < DK; i += CH) {
    sh_q[i] = qb[(t * H + h) * DK + i];
    sh_b[i] = kb[t * KW + hk * DK + i];
  }
  workgroupBarrier();
  let s = cs + l.x;
  var acc = 0.0;
  if (s <= t) {
    let ko = s * KW + hk * DK;
    for (var i = 0u; i < DK; i++) {
      if (HAS_GATE) {
        acc = fma(sh_q[i] * kb[kplane + ko + i], exp(sh_b[i] - kb[ko + i]), acc);
      } else {
        acc = fma(sh_q[i], kb[kplane + ko + i], acc);
      }
    }
  }
  A[(t * H + h) * CH + l.x] = acc;
}
