// rope_kv: the attention step between the q|k|v projection and sdpa, in one dispatch: for each token t and head,
// add the projection bias (BIAS), RMSNorm the q and k heads (QK_NORM; weight w or 1 + w with PLUS_ONE), rotate
// their first R dims (rotate-half RoPE, position = cursor.pos + offset in the sequence, table row clamped to P − 1
// as rope.wgsl), write q back in place and append k and v to the slot caches at that position (kv_cache.wgsl, as kv_store.wgsl).
// Equal to bias add, rms_norm (per head), rope ×2 and kv_store ×2 run one after the other (rope_kv.ref.ts).
// Bindings: step uniform; stepmeta u32; q [N, H·D] f32 (in place); k, v [N, KV·D] f32 (read only); kc, vc
// [slots, ctx, KV·D] stored as KVDT in u32 words; table [2, P, R/2] f32; aux f32: [qn D | kn D] when QK_NORM, then
// [qb H·D | kb KV·D | vb KV·D] when BIAS (never read when neither; the shader still names it so the layout keeps it); dims (H, KV, D, R), (P, ctx, eps bits, 0).
// Dispatch: one workgroup of WG threads per (token, head j < H + 2·KV: q heads, then k heads, then v heads), 2-D;
// thread li holds elements li + WG·i (i < DPT) of the head. WG is rms_norm's choice for a row of D, so the sum of
// squares is added in rms_norm's order (same rounding). 16-bit caches (KV16) need an even D: pairs (e, e+1) share
// a word, low half first. Defines: WG, DPT, QK_NORM, PLUS_ONE, BIAS, KV16, KV_F16.
#include "common.wgsl"
#include "kv_cache.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;     // [N, H·D]
@group(0) @binding(3) var<storage, read> k: array<f32>;           // [N, KV·D]
@group(0) @binding(4) var<storage, read> v: array<f32>;           // [N, KV·D]
@group(0) @binding(5) var<storage, read_write> kc: array<u32>;    // [slots, ctx, KV·D] (÷2 words when 16-bit)
@group(0) @binding(6) var<storage, read_write> vc: array<u32>;
@group(0) @binding(7) var<storage, read> table: array<f32>;       // [2, P, R/2]
@group(0) @binding(8) var<storage, read> aux: array<f32>;         // norm weights, biases
@group(0) @binding(9) var<uniform> dims: array<vec4u, 2>;         // (H, KV, D, R), (P, ctx, eps bits, 0)

var<workgroup> red: array<f32, WG>;
var<workgroup> sh: array<f32, WG * DPT>;

@compute @workgroup_size(WG)
fn rope_kv(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims[0].x;
  let KV = dims[0].y;
  let D = dims[0].z;
  let half = dims[0].w / 2u;
  let P = dims[1].x;
  let ctx = dims[1].y;
  let eps = bitcast<f32>(dims[1].z);
  let NH = H + 2u * KV;
  let idx = g.x + g.y * ng.x;
  if (idx >= step.n * NH) { return; }
  let t = idx / NH;
  let j = idx % NH;
  var kind = 0u;            // 0: q head, 1: k head, 2: v head
  var hd = j;
  if (j >= H + KV) { kind = 2u; hd = j - H - KV; } else if (j >= H) { kind = 1u; hd = j - H; }
  let KVD = KV * D;
  let pos = kv_pos(t);
  var src = t * H * D + hd * D;   // the head's first element in q, k or v
  if (kind > 0u) { src = t * KVD + hd * D; }

  var val: array<f32, DPT>;
  for (var i = 0u; i < DPT; i++) {
    let e = li + i * WG;
    if (e < D) {
      var x = 0.0;
      if (kind == 0u) { x = q[src + e]; } else if (kind == 1u) { x = k[src + e]; } else { x = v[src + e]; }
      if (BIAS) {
        var bo = 2u * D * u32(QK_NORM) + hd * D;
        if (kind == 1u) { bo += H * D; } else if (kind == 2u) { bo += H * D + KVD; }
        x += aux[bo + e];
      }
      val[i] = x;
    }
  }

  if (QK_NORM) {
  var s = 0.0;
  for (var i = 0u; i < DPT; i++) { if (li + i * WG < D) { s += val[i] * val[i]; } }
  red[li] = s;
  workgroupBarrier();
  for (var r = WG / 2u; r > 0u; r >>= 1u) {
    if (li < r) { red[li] += red[li + r]; }
    workgroupBarrier();
  }
  if (kind < 2u) {
    let inv = inverseSqrt(red[0] / f32(D) + eps);
    let wo = kind * D;       // qn, then kn
    for (var i = 0u; i < DPT; i++) {
      let e = li + i * WG;
      if (e < D) {
        var y = val[i] * inv;
        if (PLUS_ONE) { y *= 1.0 + aux[wo + e]; } else { y *= aux[wo + e]; }
        val[i] = y;
      }
    }
  }
  }

  // rotate the first R dims of q and k heads: each element needs its partner e ± R/2, held by another thread
  for (var i = 0u; i < DPT; i++) { sh[li + i * WG] = val[i]; }
  workgroupBarrier();
  if (kind < 2u) {
    let p = min(pos, P - 1u);
    for (var i = 0u; i < DPT; i++) {
      let e = li + i * WG;
      if (e < 2u * half) {
        let m = e % half;
        let c = table[p * half + m];
        let sn = table[P * half + p * half + m];
        if (e < half) { val[i] = sh[e] * c - sh[e + half] * sn; } else { val[i] = sh[e] * c + sh[e - half] * sn; }
      }
    }
  }

  if (kind == 0u) {
    for (var i = 0u; i < DPT; i++) { let e = li + i * WG; if (e < D) { q[src + e] = val[i]; } }
    return;
  }
#if KV16
  // pairs of elements share a word: gather the head's final values, then each thread packs words li + WG·i
  workgroupBarrier();
  for (var i = 0u; i < DPT; i++) { sh[li + i * WG] = val[i]; }
  workgroupBarrier();
  let o = (kv_row(t, ctx, KVD) + hd * D) / 2u;
  for (var w = li; w < D / 2u; w += WG) {
    let word = kv_pack(sh[2u * w], sh[2u * w + 1u]);
    if (kind == 1u) { kc[o + w] = word; } else { vc[o + w] = word; }
  }
#else
  let o = kv_row(t, ctx, KVD) + hd * D;
  for (var i = 0u; i < DPT; i++) {
    let e = li + i * WG;
    if (e < D) { if (kind == 1u) { kc[o + e] = bitcast<u32>(val[i]); } else { vc[o + e] = bitcast<u32>(val[i]); } }
  }
#endif
}
