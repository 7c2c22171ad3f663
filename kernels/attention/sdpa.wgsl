// sdpa: causal GQA softmax attention of each query token over its slot's KV cache, online softmax over key
// blocks of WG (never materialising scores beyond one block); spec-deltanet-attention-qwen3next.md §1.7.
//   p = cursor.pos + offset;  s_j = q·k_j·scale for j ≤ p (and j > p − W when windowed);  o = Σ softmax(s)_j v_j
// Bindings: step uniform; stepmeta u32; q [N, H·D]; kc, vc [slots, ctx, KV·D] stored as KVDT in u32 words (see
// kv_store.wgsl: 1 f32, 2 bf16, 3 f16; defines KV16, KV_F16); out [N, H·D]; dims.
// Dispatch: one workgroup of WG threads per (token, head), 2-D grid over N·H; thread i scores key j0+i, then
// owns output dims i, i+WG, … (DPT of them). Runtime dims: H, KV, D, ctx, window, scale. Defines: WG, DPT. f32.
#include "common.wgsl"
#include "sdpa_tree.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, _a: u32, _b: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;            // [N, H·D]
@group(0) @binding(3) var<storage, read> kc: array<u32>;           // [slots, ctx, KV·D]
@group(0) @binding(4) var<storage, read> vc: array<u32>;           // [slots, ctx, KV·D]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;    // [N, H·D]
@group(0) @binding(6) var<uniform> dims: Dims;

var<workgroup> qs: array<f32, WG * DPT>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> red: array<f32, WG>;

// element i of a cache
fn kv_at(w: u32, i: u32) -> f32 {
#if KV16
#if KV_F16
  return unpack2x16float(w)[i & 1u];
#else
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
#endif
#else
  return bitcast<f32>(w);
#endif
}
#if KV16
fn kget(i: u32) -> f32 { return kv_at(kc[i >> 1u], i); }
fn vget(i: u32) -> f32 { return kv_at(vc[i >> 1u], i); }
#else
fn kget(i: u32) -> f32 { return bitcast<f32>(kc[i]); }
fn vget(i: u32) -> f32 { return bitcast<f32>(vc[i]); }
#endif

fn wg_reduce(v: f32, i: u32, is_max: bool) -> f32 {
  red[i] = v;
  return wg_tree(i, is_max);
}

@compute @workgroup_size(WG)
fn sdpa(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.H;
  let D = dims.D;
  let th = wg.x + wg.y * ng.x;
  if (th >= step.n * H) { return; }
  let t = th / H;
  let h = th % H;
  let kh = h / (H / dims.KV);
  let cu = cursor(seq_of(t));
  let slot = cu.slot;
  let p = cu.pos + t - cu.start;
  var j0 = 0u;
  if (dims.window > 0u && p + 1u > dims.window) { j0 = p + 1u - dims.window; }
  let i = l.x;
  for (var d = i; d < D; d += WG) { qs[d] = q[th * D + d]; }
  workgroupBarrier();
  let KVD = dims.KV * D;
  let base = slot * dims.ctx * KVD + kh * D;
  var m = -3.0e38;
  var lsum = 0.0;
  var acc: array<f32, DPT>;
  for (var jb = j0; jb <= p; jb += WG) {
    let j = jb + i;
    var s = -3.0e38;
    if (j <= p) {
      var dot = 0.0;
      let ko = base + j * KVD;
      for (var d = 0u; d < D; d++) { dot += qs[d] * kget(ko + d); }
      s = dot * dims.scale;
    }
    let mn = max(m, wg_reduce(s, i, true));
    var e = 0.0;
    if (j <= p) { e = exp(s - mn); }
    ps[i] = e;
    let corr = exp(m - mn);
    lsum = lsum * corr + wg_reduce(e, i, false);
    m = mn;
    let nb = min(WG, p + 1u - jb);
    for (var k = 0u; k < DPT; k++) {
      let d = i + k * WG;
      var a = acc[k] * corr;
      if (d < D) {
        for (var jj = 0u; jj < nb; jj++) { a += ps[jj] * vget(base + (jb + jj) * KVD + d); }
      }
      acc[k] = a;
    }
    workgroupBarrier();
  }
  for (var k = 0u; k < DPT; k++) {
    let d = i + k * WG;
    if (d < D) { out[th * D + d] = acc[k] / lsum; }
  }
}
