// ln_shift: RWKV7's LayerNorm, token shift with mixing and shift-state store in one dispatch (spec-rwkv7-gla-abc.md
// §1.3 steps 1–3, §1.4): h_t = LN(x_t); prev = h_{t−1}, or the sequence's shift state for its first token;
// out[m, t, c] = fma(prev − h, mix[m, c], h); the state of each sequence becomes h of its last token.
// With PRE (layer 0, norm_first): x_t ← LN_pre(e_t) first, written to xo (the residual stream from then on).
// Bindings: step uniform; stepmeta u32 (token→sequence, cursors); x [N, C] (e when PRE); nw [2 or 4, C] = LN weight,
// bias (then pre weight, pre bias when PRE; a zero bias where the model has none); state [slots, C]; mix [M, C];
// out [M, cap, C] (plane stride step.cap·C); xo [N, C] (written when PRE; else a placeholder).
// Dispatch: NB workgroups of WG threads per token row (block b writes columns [b·WG, b·WG + WG), one per thread),
// over a 2-D grid of N·NB. Every workgroup of a row takes the full-row statistics itself: its threads hold EPT =
// ⌈C / WG⌉ columns of the row (and of the other row) in registers, two-pass f32 mean and variance of both rows at once
// (subgroupAdd then workgroup memory across the subgroups when SG_RED, else a workgroup tree). The other row is the
// previous token's, or (at a sequence's first token) its last token's, whose h it stores as the new state after
// reading the old one: the only workgroups touching a slot's state are its first token's, each its own columns, and
// each thread reads its column of the state before writing it. A one-token sequence's other row is the row itself.
// The token's row and the column's own loads are issued first, before the cursor and the statistics. Runtime dims: C, EPS. Defines: WG, EPT, NB, M,
// PRE, SG_RED, SGS.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;            // [N, C]
@group(0) @binding(3) var<storage, read> nw: array<f32>;           // [2 | 4, C]
@group(0) @binding(4) var<storage, read_write> state: array<f32>;  // [slots, C]
@group(0) @binding(5) var<storage, read> mix: array<f32>;          // [M, C]
@group(0) @binding(6) var<storage, read_write> out: array<f32>;    // [M, cap, C]
@group(0) @binding(7) var<storage, read_write> xo: array<f32>;     // [N, C]
@group(0) @binding(8) var<uniform> dims: vec4f;                    // C, M (unused: a define), EPS

#include "rwkv7_red.wgsl"

// Two-pass f32 mean and 1/σ of two rows at once (x: row a, y: row b), each thread holding columns lid + k·WG < C.
fn stats2(a: array<f32, EPT>, b: array<f32, EPT>, C: u32, EPS: f32, lid: u32, sg: u32) -> array<vec2f, 2> {
  let fc = f32(C);
  var s = vec2f(0.0);
  for (var k = 0u; k < EPT; k++) { if (lid + k * WG < C) { s += vec2f(a[k], b[k]); } }
  let mu = wg_sum2(s, lid, sg) / fc;
  var q = vec2f(0.0);
  for (var k = 0u; k < EPT; k++) { if (lid + k * WG < C) { let d = vec2f(a[k], b[k]) - mu; q += d * d; } }
  return array<vec2f, 2>(mu, inverseSqrt(wg_sum2(q, lid, sg) / fc + EPS));
}

@compute @workgroup_size(WG)
#if SG_RED
fn ln_shift(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn ln_shift(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let sg = 1u;
#endif
  let C = u32(dims.x);
  let EPS = dims.z;
  let wi = g.x + g.y * ng.x;
  let t = wi / NB;
  if (t >= step.n) { return; }   // uniform per workgroup
  // this thread's output column and the token's own row first (they do not wait for the cursor)
  let c = (wi % NB) * WG + lid;
  let live = c < C;
  let cc = min(c, C - 1u);
  let xt_c = x[t * C + cc];
  var mixc: array<f32, M>;
  for (var m = 0u; m < M; m++) { mixc[m] = mix[m * C + cc]; }
  var vt: array<f32, EPT>;
  for (var k = 0u; k < EPT; k++) { vt[k] = x[t * C + min(lid + k * WG, C - 1u)]; }
  let cu = cursor(seq_of(t));
  let first = t == cu.start;
  // the other row: the previous token's, or the sequence's last token's at its first token (the row itself for a
  // one-token sequence: no second load)
  var o = t - 1u;
  if (first) { o = cu.start + cu.len - 1u; }
  let sb = cu.slot * C;
  var old = 0.0;
  if (first && live) { old = state[sb + cc]; }
  var xo_c = xt_c;
  var vo = vt;
  if (o != t) {   // uniform per workgroup
    xo_c = x[o * C + cc];
    for (var k = 0u; k < EPT; k++) { vo[k] = x[o * C + min(lid + k * WG, C - 1u)]; }
  }
  var pst = vec2f(0.0, 1.0);   // pre-norm mean, 1/σ of row t (PRE)
  var pso = vec2f(0.0, 1.0);
  if (PRE) {
    let st = stats2(vt, vo, C, EPS, lid, sg);
    let mu = st[0];
    let rs = st[1];
    pst = vec2f(mu.x, rs.x);
    pso = vec2f(mu.y, rs.y);
    for (var k = 0u; k < EPT; k++) {
      let i = min(lid + k * WG, C - 1u);
      let w = nw[2u * C + i];
      let b = nw[3u * C + i];
      vt[k] = (vt[k] - mu.x) * rs.x * w + b;
      vo[k] = (vo[k] - mu.y) * rs.y * w + b;
    }
  }
  let st = stats2(vt, vo, C, EPS, lid, sg);
  let mu = st[0];
  let rs = st[1];
  if (!live) { return; }
  var it = xt_c;
  var io = xo_c;
  if (PRE) {
    let w = nw[2u * C + c];
    let b = nw[3u * C + c];
    it = (it - pst.x) * pst.y * w + b;
    io = (io - pso.x) * pso.y * w + b;
    xo[t * C + c] = it;
  }
  let w = nw[c];
  let b = nw[C + c];
  let h = (it - mu.x) * rs.x * w + b;
  let ho = (io - mu.y) * rs.y * w + b;
  var prev = ho;
  if (first) { prev = old; }
  let d = prev - h;
  for (var m = 0u; m < M; m++) { out[m * step.cap * C + t * C + c] = fma(d, mixc[m], h); }
  if (first) { state[sb + c] = ho; }   // after this thread's read of the same element
}
