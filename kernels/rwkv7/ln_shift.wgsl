// ln_shift: RWKV7's LayerNorm, token shift with mixing and shift-state store in one dispatch (spec-rwkv7-gla-abc.md
// §1.3 steps 1–3, §1.4): h_t = LN(x_t); prev = h_{t−1}, or the sequence's shift state for its first token;
// out[m, t, c] = fma(prev − h, mix[m, c], h); the state of each sequence becomes h of its last token.
// With PRE (layer 0, norm_first): x_t ← LN_pre(e_t) first, written to xo (the residual stream from then on).
// Bindings: step uniform; stepmeta u32 (token→sequence, cursors); x [N, C] (e when PRE); nw [2 or 4, C] = LN weight,
// bias (then pre weight, pre bias when PRE; a zero bias where the model has none); state [slots, C]; mix [M, C];
// out [M, cap, C] (plane stride step.cap·C); xo [N, C] (written when PRE; else a placeholder).
// Dispatch: one workgroup of WG threads per token row (2-D grid). Runtime dims: C, M, EPS.
// Each row's workgroup also normalises one more row: the previous token's, or (at a sequence's first token) its last
// token's, whose h it stores as the new state after reading the old one: the only workgroup touching a slot's state
// is its first token's, and each thread reads its columns of the state before writing them. Two-pass f32 statistics
// with a workgroup tree reduction, as layer_norm.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;            // [N, C]
@group(0) @binding(3) var<storage, read> nw: array<f32>;           // [2 | 4, C]
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [slots, C]
@group(0) @binding(5) var<storage, read> mix: array<f32>;          // [M, C]
@group(0) @binding(6) var<storage, read_write> out: array<f32>;    // [M, cap, C]
@group(0) @binding(7) var<storage, read_write> xo: array<f32>;     // [N, C]
@group(0) @binding(8) var<uniform> dims: vec4f;                    // C, M, EPS

var<workgroup> red: array<f32, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

// Element c of the LayerNorm input row `row` (LN_pre(e) when PRE, with the pre-norm statistics `ps`).
fn xin(row: u32, c: u32, C: u32, ps: vec2f) -> f32 {
  let v = x[row * C + c];
  if (PRE) { return (v - ps.x) * ps.y * nw[2u * C + c] + nw[3u * C + c]; }
  return v;
}

// Mean and 1/sqrt(var + EPS) of input row `row`.
fn stats(row: u32, C: u32, EPS: f32, ps: vec2f, lid: u32) -> vec2f {
  var s = 0.0;
  for (var c = lid; c < C; c += WG) { s += xin(row, c, C, ps); }
  let mu = wg_sum(s, lid) / f32(C);
  var v = 0.0;
  for (var c = lid; c < C; c += WG) { let d = xin(row, c, C, ps) - mu; v += d * d; }
  return vec2f(mu, inverseSqrt(wg_sum(v, lid) / f32(C) + EPS));
}

// Statistics of the raw row (the pre-norm's, when PRE).
fn raw_stats(row: u32, C: u32, EPS: f32, lid: u32) -> vec2f {
  var s = 0.0;
  for (var c = lid; c < C; c += WG) { s += x[row * C + c]; }
  let mu = wg_sum(s, lid) / f32(C);
  var v = 0.0;
  for (var c = lid; c < C; c += WG) { let d = x[row * C + c] - mu; v += d * d; }
  return vec2f(mu, inverseSqrt(wg_sum(v, lid) / f32(C) + EPS));
}

fn normed(row: u32, c: u32, C: u32, ps: vec2f, st: vec2f) -> f32 {
  return (xin(row, c, C, ps) - st.x) * st.y * nw[c] + nw[C + c];
}

@compute @workgroup_size(WG)
fn ln_shift(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let C = u32(dims.x);
  let M = u32(dims.y);
  let EPS = dims.z;
  let t = g.x + g.y * ng.x;
  if (t >= step.n) { return; }   // uniform per workgroup
  let cu = cursor(seq_of(t));
  let first = t == cu.start;
  // the other row: the previous token's, or the sequence's last token's at its first token
  var o = t - 1u;
  if (first) { o = cu.start + cu.len - 1u; }
  var ps_t = vec2f(0.0);
  var ps_o = vec2f(0.0);
  if (PRE) {
    ps_t = raw_stats(t, C, EPS, l.x);
    ps_o = raw_stats(o, C, EPS, l.x);
  }
  let st_t = stats(t, C, EPS, ps_t, l.x);
  let st_o = stats(o, C, EPS, ps_o, l.x);
  let sb = cu.slot * C;
  for (var c = l.x; c < C; c += WG) {
    let h = normed(t, c, C, ps_t, st_t);
    let ho = normed(o, c, C, ps_o, st_o);
    var prev = ho;
    if (first) { prev = state[sb + c]; }
    let d = prev - h;
    for (var m = 0u; m < M; m++) { out[m * step.cap * C + t * C + c] = fma(d, mix[m * C + c], h); }
    if (PRE) { xo[t * C + c] = xin(t, c, C, ps_t); }
    if (first) { state[sb + c] = ho; }   // after this thread's read of the same element
  }
}
