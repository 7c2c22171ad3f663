// rwkv7_proj_ln: ln_shift in the prologue of rwkv7_proj, for decode steps whose sequences have one token each
// (spec-rwkv7-gla-abc.md §1.3 steps 1–4). With PRE (layer 0, norm_first) x_t ← LN_pre(e_t) first, which the first
// workgroup writes to aux (the residual stream from then on). With PREV the first workgroup also stores the previous
// layer's channel-mix shift state: aux[s_t] ← proj plane 5 row t (its h, which rwkv7_cmix left there). With CMIX
// the kernel is RWKV7's channel-mix key instead (§1.4, rwkv7_cmix): one segment of I = dims[0].y rows (Wr = the
// key weight), one mix row, relu(·)² into proj = ffk [N, I], h into aux [N, C]. Per row t (slot s_t): h = LN(x_t),
// the segment's mixed row xm = h + (shift[s_t] − h)⊙mix[plane] built in workgroup memory, then the seven projections
// of rwkv7_proj (same segments, lanes, reduction) from it. The shift state is only read here: the first workgroup
// writes h to proj plane 4, and the state store happens after this dispatch
// (wkv7_lora's SHIFT epilogue), so no workgroup can see a half-updated state.
// Bindings (ten storage buffers, WebGPU's usual most): step uniform; stepmeta (cursors, token→sequence); xin [N, C]
// as vec4f (e with PRE); lnw [NWR + 6, C] as vec4f: LN weight, bias (then with PRE the pre-norm's weight and bias:
// NWR = 4, else 2), then the six mix rows; shift [slots, C] as vec4f; Wr, Wk, Wv, Wl as rwkv7_proj;
// proj [6, cap, C]: r, k, v into planes 0, 2, 3 as rwkv7_proj, the activated LoRA row into plane 1 (row stride C,
// R ≤ C) and h into plane 4 (planes the split path's w and a would use); aux as vec4f: xo [N, C] with PRE, the
// previous layer's channel-mix shift state [slots, C] with PREV, h [N, C] with CMIX, else a placeholder; dims: C,
// I (CMIX), R, EPS (f32 bits) | segment
// ends | … | RW, RA, RG, RV (rwkv7_proj's).
// Dispatch as rwkv7_proj (z over blocks of RB rows). Prologue: each thread takes EV = ⌈C / (4·WG)⌉ vec4f of the row,
// two-pass f32 statistics (subgroupAdd + workgroup memory when SG_RED, else a workgroup tree), one row after the
// other; the lane's first batch of weight units is loaded before the prologue, each later batch while the previous
// one is summed. Each lane group takes RPT output rows, WG / TPR apart (fewer workgroups, each building the mixed
// rows once: the prologue reads ~5 rows of C f32 per workgroup). Defines: WG, TPR, U, RB, UNROLL, RPT, XV (= C / 4),
// EV, PRE, PREV, CMIX, SG_RED, SGS, W_F32, W_F16.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> xin: array<vec4f>;      // [N, C / 4]
@group(0) @binding(3) var<storage, read> lnw: array<vec4f>;      // [NWR + 6, C / 4]
@group(0) @binding(4) var<storage, read> shift: array<vec4f>;    // [slots, C / 4]
@group(0) @binding(5) var<storage, read> Wr: array<vec4u>;
@group(0) @binding(6) var<storage, read> Wk: array<vec4u>;
@group(0) @binding(7) var<storage, read> Wv: array<vec4u>;
@group(0) @binding(8) var<storage, read> Wl: array<vec4u>;
@group(0) @binding(9) var<storage, read_write> proj: array<f32>; // [6, cap, C]
@group(0) @binding(10) var<storage, read_write> aux: array<vec4f>; // PRE: xo [N, C / 4]; PREV: [slots, C / 4]; CMIX: h [N, C / 4]
@group(0) @binding(11) var<uniform> dims: array<vec4u, 4>;

#if PRE
const NWR = 4u;   // LayerNorm rows before the mix rows in lnw: weight, bias, pre weight, pre bias
#else
const NWR = 2u;   // LayerNorm rows before the mix rows in lnw: weight, bias
#endif

var<workgroup> xs: array<vec4f, RB * XV>;   // the mixed rows of this segment's plane

#include "rwkv7_gemv.wgsl"
#include "rwkv7_red.wgsl"

// Two-pass f32 mean and 1/σ of a row held as EV vec4f a thread (units li + k·WG < XV).
fn row_stats(xv: array<vec4f, EV>, C: u32, EPS: f32, li: u32, sg: u32) -> vec2f {
  let fc = f32(C);
  var sm = 0.0;
  for (var k = 0u; k < EV; k++) { if (li + k * WG < XV) { sm += dot(xv[k], vec4f(1.0)); } }
  let mu = wg_sum(sm, li, sg) / fc;
  var q = 0.0;
  for (var k = 0u; k < EV; k++) { if (li + k * WG < XV) { let d = xv[k] - mu; q += dot(d, d); } }
  return vec2f(mu, inverseSqrt(wg_sum(q, li, sg) / fc + EPS));
}

@compute @workgroup_size(WG)
#if SG_RED
fn rwkv7_proj_ln(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u,
  @builtin(subgroup_size) sg: u32) {
#else
fn rwkv7_proj_ln(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let sg = 1u;
#endif
  let C = dims[0].x;
  let EPS = bitcast<f32>(dims[0].w);
  let rows = step.n;
  let wg = g.x + g.y * ng.x;
  var s = 0u;
  while (s < 7u && wg >= seg_end(s)) { s++; }
  if (s == 7u) { return; }   // uniform per workgroup
  var begin = 0u;
  if (s > 0u) { begin = seg_end(s - 1u); }
  let sgm = segment(s, C);
  var len = sgm.len;
  if (CMIX) { len = dims[0].y; }
  let xp = sgm.xp;
  let lofs = sgm.lofs;
  let b = min(s, 3u);
  let lane = li % TPR;
  let sub = li / TPR;
  let o0 = (wg - begin) * RPT * (WG / TPR) + sub;   // this lane group's first output row (then + WG / TPR, …)
  let r0 = g.z * RB;
  // the lane's first batch of weights, in flight through the prologue
  var wv: array<vec4u, UNROLL>;
  if (o0 < len && lane + (UNROLL - 1u) * TPR < U) { wv = load_batch(b, (lofs + o0) * U + lane); }

  // prologue: the mixed rows into xs. The LayerNorm and mix rows of this thread's columns, then per row x and the
  // shift state, are all loaded before the row's statistics.
  var nwv: array<vec4f, EV>;
  var nbv: array<vec4f, EV>;
  var mxv: array<vec4f, EV>;
  var pwv: array<vec4f, EV>;
  var pbv: array<vec4f, EV>;
  for (var k = 0u; k < EV; k++) {
    let i = min(li + k * WG, XV - 1u);
    nwv[k] = lnw[i];
    nbv[k] = lnw[XV + i];
    mxv[k] = lnw[(NWR + xp) * XV + i];
    if (PRE) {
      pwv[k] = lnw[2u * XV + i];
      pbv[k] = lnw[3u * XV + i];
    }
  }
  for (var r = 0u; r < RB; r++) {
    let row = min(r0 + r, rows - 1u);
    var xv: array<vec4f, EV>;
    for (var k = 0u; k < EV; k++) { xv[k] = xin[row * XV + min(li + k * WG, XV - 1u)]; }
    let slot = cursor(seq_of(row)).slot;
    var sv: array<vec4f, EV>;
    for (var k = 0u; k < EV; k++) { sv[k] = shift[slot * XV + min(li + k * WG, XV - 1u)]; }
    if (PRE) {
      // x ← LN_pre(e), the residual stream: the first workgroup stores it
      let ps = row_stats(xv, C, EPS, li, sg);
      let pmu = ps.x;
      let prs = ps.y;
      for (var k = 0u; k < EV; k++) {
        xv[k] = (xv[k] - pmu) * prs * pwv[k] + pbv[k];
        let i = li + k * WG;
        if (wg == 0u && r0 + r < rows && i < XV) { aux[row * XV + i] = xv[k]; }
      }
    }
    let st = row_stats(xv, C, EPS, li, sg);
    let mu = st.x;
    let rs = st.y;
    for (var k = 0u; k < EV; k++) {
      let i = li + k * WG;
      if (i < XV) {
        let h = (xv[k] - mu) * rs * nwv[k] + nbv[k];
        if (wg == 0u && r0 + r < rows) {
          if (CMIX) {
            aux[row * XV + i] = h;
          } else {
            let hb = (4u * step.cap + row) * C + 4u * i;
            proj[hb] = h.x; proj[hb + 1u] = h.y; proj[hb + 2u] = h.z; proj[hb + 3u] = h.w;
          }
          if (PREV) {
            let pb = (5u * step.cap + row) * C + 4u * i;
            aux[slot * XV + i] = vec4f(proj[pb], proj[pb + 1u], proj[pb + 2u], proj[pb + 3u]);
          }
        }
        xs[r * XV + i] = fma(sv[k] - h, mxv[k], h);
      }
    }
  }
  workgroupBarrier();

  // RPT output rows per lane group, one after the other (the mixed rows built once for all of them)
  for (var j = 0u; j < RPT; j++) {
  let o = o0 + j * (WG / TPR);
  let live = o < len;
  let base = (lofs + min(o, len - 1u)) * U;
  if (j > 0u && live && lane + (UNROLL - 1u) * TPR < U) { wv = load_batch(b, base + lane); }
  var acc = array<f32, RB>();
  if (live) {
    var u = lane;
    for (; u + (UNROLL - 1u) * TPR < U; u += UNROLL * TPR) {
      let cur = wv;
      let nu = u + UNROLL * TPR;
      if (nu + (UNROLL - 1u) * TPR < U) { wv = load_batch(b, base + nu); }   // the next batch in flight
      for (var k = 0u; k < UNROLL; k++) {
        let uk = XPU * (u + k * TPR);
        for (var r = 0u; r < RB; r++) { acc[r] += wdot(cur[k], xs[r * XV + uk], xs[r * XV + uk + XPU - 1u]); }
      }
    }
    for (; u < U; u += TPR) {
      let w0 = load_one(b, base + u);
      for (var r = 0u; r < RB; r++) { acc[r] += wdot(w0, xs[r * XV + XPU * u], xs[r * XV + XPU * u + XPU - 1u]); }
    }
  }

  acc = group_sum(acc, li, sg);

  if (live) {
    for (var r = 0u; r < RB; r++) {
      let row = r0 + r;
      if (r % TPR == lane && row < rows) {
        var v = acc[r];
        if (CMIX) {
          let q = max(v, 0.0);
          proj[row * len + o] = q * q;
        } else if (s < 3u) {
          proj[(xp * step.cap + row) * C + o] = v;
        } else {
          if (s == 3u) { v = tanh_stable(v); }
          if (s == 5u) { v = sigmoid(v); }
          proj[(step.cap + row) * C + lofs + o] = v;
        }
      }
    }
  }
  workgroupBarrier();   // red is reused by the next output row
  }
}
