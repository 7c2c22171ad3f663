// gla_recurrent: gated linear attention, token by token over each packed sequence (spec-rwkv7-gla-abc.md §2.3
// steps 4–7; without HAS_GATE and with NORMALIZE it is fla linear attention, spec-deltanet-attention-qwen3next.md §5.3):
//   g = logsigmoid(gk)/GATE_NORM (max CLAMP_MIN);  q, k ← FMAP(q), FMAP(k)
//   S[i][j] = exp(g_i)·S[i][j] + k_i·v_j;  o_j = Σ_i (SCALE·q_i)·S[i][j]   (decay, then add, then read)
//   NORMALIZE: z_i += k_i;  o_j ← o_j / (Σ_i SCALE·q_i·z_i + 1e-10)
// Bindings: step uniform; stepmeta u32 (cursors); q [N, H·DK]; k [N, HKV·DK]; v [N, HKV·DV]; gk [N, HKV·DK] (dummy
// without HAS_GATE); state [slots, SLOT] f32: per slot S [H, DK, DV] (S[i][j], i = key), then with NORMALIZE
// z [H, DV/TV, DK], one copy per value tile (workgroups never read what another writes); o [N, H·DV]. Query head h reads kv head ⌊h·HKV/H⌋ (repeat_interleave).
// Dispatch: (H·DV/TV, B) workgroups of TV threads; thread j owns column j of its head's S (DK registers).
// Runtime dims: H, HKV, SCALE, GATE_NORM, CLAMP_MIN (−3e38 = none). Defines: DK, DV, TV, HAS_GATE, NORMALIZE, FMAP.
// All arithmetic f32.
#include "common.wgsl"
#include "gla_common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read> gk: array<f32>;
@group(0) @binding(6) var<storage, read_write> state: array<f32>;
@group(0) @binding(7) var<storage, read_write> o: array<f32>;
@group(0) @binding(8) var<uniform> dims: vec4f;        // H, HKV, SCALE, GATE_NORM
@group(0) @binding(9) var<uniform> dims2: vec4f;       // CLAMP_MIN

var<workgroup> sh_q: array<f32, DK>;
var<workgroup> sh_k: array<f32, DK>;
var<workgroup> sh_d: array<f32, DK>;
var<workgroup> sh_z: array<f32, DK>;

@compute @workgroup_size(TV)
fn gla_recurrent(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
  let H = u32(dims.x);
  let HKV = u32(dims.y);
  let SCALE = dims.z;
  let GATE_NORM = dims.w;
  let CLAMP_MIN = dims2.x;
  let tiles = DV / TV;
  let h = g.x / tiles;
  let j = (g.x % tiles) * TV + l.x;
  let seq = g.y;
  if (seq >= step.b) { return; }
  let cu = cursor(seq);
  let slot = cu.slot;
  let start = cu.start;
  let len = cu.len;
  let hk = h / (H / HKV);
  var SLOT = H * DK * DV;
  if (NORMALIZE) { SLOT += H * tiles * DK; }
  let base = slot * SLOT + h * DK * DV;
  let zbase = slot * SLOT + H * DK * DV + (h * tiles + g.x % tiles) * DK;
  var S: array<f32, DK>;
  for (var i = 0u; i < DK; i++) { S[i] = state[base + i * DV + j]; }
  if (NORMALIZE) {
    for (var i = l.x; i < DK; i += TV) { sh_z[i] = state[zbase + i]; }
  }
  for (var t = start; t < start + len; t++) {
    workgroupBarrier();
    for (var i = l.x; i < DK; i += TV) {
      sh_q[i] = SCALE * fmap(q[(t * H + h) * DK + i]);
      let kv = fmap(k[(t * HKV + hk) * DK + i]);
      sh_k[i] = kv;
      if (HAS_GATE) { sh_d[i] = exp(max(logsigmoid(gk[(t * HKV + hk) * DK + i]) / GATE_NORM, CLAMP_MIN)); }
      if (NORMALIZE) { sh_z[i] += kv; }
    }
    workgroupBarrier();
    let vj = v[(t * HKV + hk) * DV + j];
    var acc = 0.0;
    for (var i = 0u; i < DK; i++) {
      if (HAS_GATE) { S[i] = sh_d[i] * S[i] + sh_k[i] * vj; } else { S[i] = S[i] + sh_k[i] * vj; }
      acc += sh_q[i] * S[i];
    }
    if (NORMALIZE) {
      var den = 1e-10;
      for (var i = 0u; i < DK; i++) { den += sh_q[i] * sh_z[i]; }
      acc = acc / den;
    }
    o[(t * H + h) * DV + j] = acc;
  }
  for (var i = 0u; i < DK; i++) { state[base + i * DV + j] = S[i]; }
  if (NORMALIZE) {
    for (var i = l.x; i < DK; i += TV) { state[zbase + i] = sh_z[i]; }
  }
}
