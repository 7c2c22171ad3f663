// sdpa_split: the first pass of split-K ("flash-decoding") attention. Each query token's key range j0..p (as in
// sdpa.wgsl: causal, last W keys when windowed) is cut into S splits of `chunk` keys (ceil(L/S) rounded up to a
// multiple of the key block B = WG·KPT); one workgroup per (token, split, head) runs the online softmax over its split and writes the
// partial (m, l, acc): m = max score, l = Σ exp(s − m), acc = Σ exp(s − m)·v (unnormalised). sdpa_combine.wgsl
// merges the S partials. spec-deltanet-attention-qwen3next.md §1.7.
// Bindings: step uniform; stepmeta u32; q [N, H·D] f32; kc, vc [slots, ctx, KV·D] stored as KVDT in u32 words
// (kv_store.wgsl; defines KV16, KV_F16); part [N, H·S·(D+2)] f32 scratch; dims.
// Dispatch: WG threads per workgroup, N·S·H workgroups (2-D grid), head fastest so the H/KV query heads of one
// KV head and split run side by side and share the K/V rows in cache. Per block of B keys, thread i scores keys
// jb+i, jb+i+WG, … (KPT of them) over D/2 element pairs, then one max and one sum reduction; for the values, thread i owns pair lane i % NPAIR (and lane + WG, …: PPT of them) of key group i / NPAIR
// (R groups, keys jj ≡ group mod R); the groups are summed at the end. Defines: WG, KPT, NPAIR = D/2, R, PPT; dims.kpt = KPT. f32.
#include "common.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, S: u32, kpt: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;            // [N, H·D]
@group(0) @binding(3) var<storage, read> kc: array<u32>;           // [slots, ctx, KV·D]
@group(0) @binding(4) var<storage, read> vc: array<u32>;           // [slots, ctx, KV·D]
@group(0) @binding(5) var<storage, read_write> part: array<f32>;   // [N, H·S·(D+2)]
@group(0) @binding(6) var<uniform> dims: Dims;

var<workgroup> qs: array<vec2f, NPAIR>;
var<workgroup> ps: array<f32, WG * KPT>;
var<workgroup> red: array<f32, WG>;
var<workgroup> accs: array<vec2f, WG * PPT>;

// element pair (e, e+1) of a cache, e even
fn unpack_pair(lo: u32, hi: u32, w: u32) -> vec2f {
#if KV16
#if KV_F16
  return unpack2x16float(w);
#else
  return vec2f(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
#endif
#else
  return vec2f(bitcast<f32>(lo), bitcast<f32>(hi));
#endif
}
#if KV16
fn kpair(e: u32) -> vec2f { return unpack_pair(0u, 0u, kc[e >> 1u]); }
fn vpair(e: u32) -> vec2f { return unpack_pair(0u, 0u, vc[e >> 1u]); }
#else
fn kpair(e: u32) -> vec2f { return unpack_pair(kc[e], kc[e + 1u], 0u); }
fn vpair(e: u32) -> vec2f { return unpack_pair(vc[e], vc[e + 1u], 0u); }
#endif

fn wg_reduce(v: f32, i: u32, is_max: bool) -> f32 {
  red[i] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (i < s) { if (is_max) { red[i] = max(red[i], red[i + s]); } else { red[i] += red[i + s]; } }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn sdpa_split(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.H;
  let D = dims.D;
  let S = dims.S;
  let idx = wg.x + wg.y * ng.x;
  if (idx >= step.n * S * H) { return; }
  let h = idx % H;
  let sp = (idx / H) % S;
  let t = idx / (H * S);
  let kh = h / (H / dims.KV);
  let cu = cursor(seq_of(t));
  let slot = cu.slot;
  let p = cu.pos + t - cu.start;
  var j0 = 0u;
  if (dims.window > 0u && p + 1u > dims.window) { j0 = p + 1u - dims.window; }
  let L = p + 1u - j0;
  let B = WG * KPT;
  let chunk = ((L + S - 1u) / S + B - 1u) / B * B;
  let js = j0 + sp * chunk;
  let je = min(p + 1u, js + chunk);
  let i = l.x;
  let po = t * H * S * (D + 2u) + (h * S + sp) * (D + 2u);
  if (js >= je) {   // an empty split (short context): a partial that weighs nothing
    if (i == 0u) { part[po] = -3.0e38; part[po + 1u] = 0.0; }
    for (var d = i; d < D; d += WG) { part[po + 2u + d] = 0.0; }
    return;
  }
  for (var d2 = i; d2 < NPAIR; d2 += WG) { qs[d2] = vec2f(q[(t * H + h) * D + 2u * d2], q[(t * H + h) * D + 2u * d2 + 1u]); }
  workgroupBarrier();
  let KVD = dims.KV * D;
  let base = slot * dims.ctx * KVD + kh * D;
  let r = i / NPAIR;
  let lane = i % NPAIR;
  var m = -3.0e38;
  var lsum = 0.0;
  var acc: array<vec2f, PPT>;
  for (var jb = js; jb < je; jb += B) {
    // the loop bound comes from the uniform: a KPT × NPAIR unrolled body takes minutes to compile on lavapipe
    var bm = -3.0e38;
    for (var k = 0u; k < dims.kpt; k++) {
      let j = jb + i + k * WG;
      var s = -3.0e38;
      if (j < je) {
        var dot = 0.0;
        let ko = base + j * KVD;
        for (var d2 = 0u; d2 < NPAIR; d2++) { let kk = kpair(ko + 2u * d2); dot += qs[d2].x * kk.x + qs[d2].y * kk.y; }
        s = dot * dims.scale;
      }
      ps[i + k * WG] = s;   // this thread's own entries until the reduction's barriers
      bm = max(bm, s);
    }
    let mn = max(m, wg_reduce(bm, i, true));
    var esum = 0.0;
    for (var k = 0u; k < dims.kpt; k++) {
      var e = 0.0;
      if (jb + i + k * WG < je) { e = exp(ps[i + k * WG] - mn); }
      ps[i + k * WG] = e;
      esum += e;
    }
    let corr = exp(m - mn);
    lsum = lsum * corr + wg_reduce(esum, i, false);
    m = mn;
    let nb = min(B, je - jb);
    if (r < R) {
      for (var k = 0u; k < PPT; k++) {
        let d2 = lane + k * WG;
        var a = acc[k] * corr;
        if (d2 < NPAIR) {
          for (var jj = r; jj < nb; jj += R) { a += ps[jj] * vpair(base + (jb + jj) * KVD + 2u * d2); }
        }
        acc[k] = a;
      }
    }
    workgroupBarrier();
  }
  if (r < R) { for (var k = 0u; k < PPT; k++) { accs[r * NPAIR + lane + k * WG] = acc[k]; } }
  workgroupBarrier();
  if (i == 0u) { part[po] = m; part[po + 1u] = lsum; }
  for (var d2 = i; d2 < NPAIR; d2 += WG) {
    var a = vec2f(0.0);
    for (var g = 0u; g < R; g++) { a += accs[g * NPAIR + d2]; }
    part[po + 2u + 2u * d2] = a.x;
    part[po + 3u + 2u * d2] = a.y;
  }
}
