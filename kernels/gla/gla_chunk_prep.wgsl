// gla_chunk_prep: first pass of the chunked GLA prefill (spec-rwkv7-gla-abc.md §2.4, chunk_gla): per sequence,
// chunk of CH tokens (chunks start at the sequence start and never cross its end), kv head hk and key index i:
//   g_t = max(logsigmoid(gk_t)/GATE_NORM, CLAMP_MIN) (0 without HAS_GATE);  B_t = Σ_{s ≤ t in the chunk} g_s  (≤ 0)
//   kf_t = FMAP(k_t);  kg_t = kf_t·exp(B_L − B_t)   (L = last token of the chunk; B_L − B_t ≤ 0)
//   per query head h of the group: qf_t = SCALE·FMAP(q_t);  qg_t = qf_t·exp(B_t)   (B_t ≤ 0)
// Only exponentials of non-positive numbers are taken.
// Bindings: step uniform; stepmeta u32 (cursors); q [N, H·DK]; k, gk [N, HKV·DK] (gk dummy without HAS_GATE);
// qb [2, cap, H·DK] (planes qf, qg); kb [3, cap, HKV·DK] (planes B, kf, kg).
// Dispatch: (⌈HKV·DK/WG⌉, B, ⌈n/CH⌉) workgroups of WG threads: one thread per (sequence, chunk, hk, i), serial over
// the chunk's tokens. Runtime dims: H, HKV, SCALE, GATE_NORM; dims2: CLAMP_MIN. Defines: DK, CH, WG, HAS_GATE, FMAP.
// All arithmetic f32.
#include "common.wgsl"
#include "gla_common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> gk: array<f32>;
@group(0) @binding(5) var<storage, read_write> qb: array<f32>;   // [2, cap, H·DK]
@group(0) @binding(6) var<storage, read_write> kb: array<f32>;   // [3, cap, HKV·DK]
@group(0) @binding(7) var<uniform> dims: vec4f;                  // H, HKV, SCALE, GATE_NORM
@group(0) @binding(8) var<uniform> dims2: vec4f;                 // CLAMP_MIN

@compute @workgroup_size(WG)
fn gla_chunk_prep(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let H = u32(dims.x);
  let HKV = u32(dims.y);
  let SCALE = dims.z;
  let GATE_NORM = dims.w;
  let CLAMP_MIN = dims2.x;
  let idx = gid.x;
  let seq = wg.y;
  if (seq >= step.b || idx >= HKV * DK) { return; }
  let cu = cursor(seq);
  let start = cu.start;
  let end = start + cu.len;
  let cs = start + wg.z * CH;
  if (cs >= end) { return; }
  let n = min(CH, end - cs);
  let hk = idx / DK;
  let i = idx % DK;
  let KW = HKV * DK;
  let kplane = step.cap * KW;
  let qplane = step.cap * H * DK;
  var b = 0.0;
  for (var t = cs; t < cs + n; t++) {
    let o = t * KW + idx;
    if (HAS_GATE) { b += max(logsigmoid(gk[o]) / GATE_NORM, CLAMP_MIN); }
    kb[o] = b;
    kb[kplane + o] = fmap(k[o]);
  }
  let G = H / HKV;
  for (var t = cs; t < cs + n; t++) {
    let o = t * KW + idx;
    let bt = kb[o];
    kb[2u * kplane + o] = kb[kplane + o] * exp(b - bt);
    let et = exp(bt);
    for (var r = 0u; r < G; r++) {
      let qo = (t * H + hk * G + r) * DK + i;
      let qf = SCALE * fmap(q[qo]);
      qb[qo] = qf;
      qb[qplane + qo] = qf * et;
    }
  }
}
