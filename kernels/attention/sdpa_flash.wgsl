// sdpa_flash: causal GQA softmax attention for prefill-shaped steps, tiled as flash attention in f32 (the math of
// sdpa.wgsl, spec-deltanet-attention-qwen3next.md §1.7). One workgroup takes BR query rows of one sequence and one
// KV head — row r is (token r / G, query head kh·G + r % G), so the G heads sharing a KV head share its K/V
// tiles — and walks the causal key range in tiles of BC keys: K tile into workgroup memory, S = Q·Kᵀ·scale in
// registers (masked to j ≤ p and, windowed, j > p − W), online softmax (running row max m and sum l), P into
// workgroup memory, then the V tile over the K tile's memory and O += P·V in registers.
// Bindings: step uniform; stepmeta u32; q [N, H·D] as vec4; kc, vc [slots, ctx, KV·D] stored as KVDT in 16-byte
// units (see kv_store.wgsl: 1 f32, 2 bf16, 3 f16; defines KV16, KV_F16); out [N, H·D] as vec4; dims.
// Dispatch: b · TPS · KV workgroups (2-D grid), TPS = ceil(longest sequence · G / BR) row tiles a sequence;
// tiles past a sequence's rows return at once. Thread (ty, tx) of WG = BR / 4 · TX owns rows 4ty … 4ty + 3: the
// scores of keys tx + TX·j (j < KPT = BC / TX) and the output vec4s tx + TX·k (k < DV4 = D4 / TX).
// Defines: D4 (head dim / 4), BR, BC, TX, WG, KPT, DV4, RS (vec4 row stride of the Q and K/V tiles: D4 + 1, which
// keeps the 16-byte reads of neighbouring key rows in distinct banks), PSF (f32 row stride of P: BC + 1).
// Runtime dims: H, KV, ctx, window, scale, TPS. f32 throughout (16-bit caches are widened on load).
#include "common.wgsl"
#include "sdpa_tile.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, TPS: u32, _b: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<vec4f>;          // [N, H·D]
@group(0) @binding(3) var<storage, read> kc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(4) var<storage, read> vc: array<vec4u>;         // [slots, ctx, KV·D]
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;  // [N, H·D]
@group(0) @binding(6) var<uniform> dims: Dims;

const NEG: f32 = -3.0e38;

var<workgroup> qs: array<vec4f, BR * RS>;
var<workgroup> kvs: array<vec4f, BC * RS>;
var<workgroup> ps: array<f32, BR * PSF>;
var<workgroup> red: array<f32, BR * TX>;

// keys jb … jb + BC − 1 of cache `which` (0: K, 1: V) into kvs; rows past jmax are zeros (never read garbage:
// a masked score's 0 times a NaN would still be NaN)
fn load_tile(which: u32, base: u32, KVD: u32, jb: u32, jmax: u32, lid: u32) {
#if KV16
  // 16-byte units of 8 elements: unit u of a row holds vec4s 2u and 2u + 1
  let U = D4 / 2u;
  for (var e = lid; e < BC * U; e += WG) {
    let j = e / U;
    let u = e % U;
    var w = vec4u(0u);
    if (jb + j <= jmax) {
      let i = (base + (jb + j) * KVD) / 8u + u;
      if (which == 0u) { w = kc[i]; } else { w = vc[i]; }
    }
    kvs[j * RS + 2u * u] = widen(w.xy);
    kvs[j * RS + 2u * u + 1u] = widen(w.zw);
  }
#else
  for (var e = lid; e < BC * D4; e += WG) {
    let j = e / D4;
    let d4 = e % D4;
    var w = vec4u(0u);
    if (jb + j <= jmax) {
      let i = (base + (jb + j) * KVD) / 4u + d4;
      if (which == 0u) { w = kc[i]; } else { w = vc[i]; }
    }
    kvs[j * RS + d4] = bitcast<vec4f>(w);
  }
#endif
}

@compute @workgroup_size(WG)
fn sdpa_flash(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let lid = l.x;
  let tx = lid % TX;
  let ty = lid / TX;
  let KV = dims.KV;
  let G = dims.H / KV;
  let rt = row_tile(wg.x + wg.y * ng.x);
  if (rt.r0 >= rt.rows) { return; }

  // the Q tile (rows past the sequence's are zeros)
  for (var e = lid; e < BR * D4; e += WG) {
    let r = e / D4;
    let d4 = e % D4;
    var v = vec4f(0.0);
    if (rt.r0 + r < rt.rows) {
      let rr = rt.r0 + r;
      v = q[q_row(rt, rr) * D4 + d4];
    }
    qs[r * RS + d4] = v;
  }

  // this thread's rows: position p and first visible key lo (rows past the sequence see nothing)
  var p: array<u32, 4>;
  var lo: array<u32, 4>;
  var m: array<f32, 4>;
  var lsum: array<f32, 4>;
  for (var i = 0u; i < 4u; i++) {
    let rr = rt.r0 + 4u * ty + i;
    p[i] = rt.cu.pos + rr / G;
    lo[i] = 0u;
    if (dims.window > 0u && p[i] + 1u > dims.window) { lo[i] = p[i] + 1u - dims.window; }
    if (rr >= rt.rows) { lo[i] = 0xffffffffu; }
    m[i] = NEG;
    lsum[i] = 0.0;
  }
  var acc: array<vec4f, 4u * DV4>;

  let KVD = KV * D4 * 4u;
  let base = rt.cu.slot * dims.ctx * KVD + rt.kh * D4 * 4u;
  for (var jb = rt.jstart; jb <= rt.pmax; jb += BC) {
    load_tile(0u, base, KVD, jb, rt.pmax, lid);
    workgroupBarrier();
    var s = array<f32, 4u * KPT>();
    for (var d4 = 0u; d4 < D4; d4++) {
      let q0 = qs[(4u * ty) * RS + d4];
      let q1 = qs[(4u * ty + 1u) * RS + d4];
      let q2 = qs[(4u * ty + 2u) * RS + d4];
      let q3 = qs[(4u * ty + 3u) * RS + d4];
      for (var j = 0u; j < KPT; j++) {
        let kv = kvs[(tx + TX * j) * RS + d4];
        s[j] += dot(q0, kv);
        s[KPT + j] += dot(q1, kv);
        s[2u * KPT + j] += dot(q2, kv);
        s[3u * KPT + j] += dot(q3, kv);
      }
    }
    for (var i = 0u; i < 4u; i++) {
      var mx = NEG;
      for (var j = 0u; j < KPT; j++) {
        let key = jb + tx + TX * j;
        let v = select(NEG, s[i * KPT + j] * dims.scale, key <= p[i] && key >= lo[i]);
        s[i * KPT + j] = v;
        mx = max(mx, v);
      }
      red[(4u * ty + i) * TX + tx] = mx;
    }
    workgroupBarrier();
    for (var i = 0u; i < 4u; i++) {
      var mt = NEG;
      for (var x = 0u; x < TX; x++) { mt = max(mt, red[(4u * ty + i) * TX + x]); }
      let mn = max(m[i], mt);
      let corr = exp(m[i] - mn);
      m[i] = mn;
      var ls = lsum[i] * corr;
      for (var k = 0u; k < DV4; k++) { acc[i * DV4 + k] *= corr; }
      for (var j = 0u; j < KPT; j++) {
        let key = jb + tx + TX * j;
        let e = select(0.0, exp(s[i * KPT + j] - mn), key <= p[i] && key >= lo[i]);
        ls += e;
        ps[(4u * ty + i) * PSF + tx + TX * j] = e;
      }
      lsum[i] = ls;
    }
    workgroupBarrier();   // P written, and every thread is done with the K tile
    load_tile(1u, base, KVD, jb, rt.pmax, lid);
    workgroupBarrier();
    for (var j = 0u; j < BC; j++) {
      let p0 = ps[(4u * ty) * PSF + j];
      let p1 = ps[(4u * ty + 1u) * PSF + j];
      let p2 = ps[(4u * ty + 2u) * PSF + j];
      let p3 = ps[(4u * ty + 3u) * PSF + j];
      for (var k = 0u; k < DV4; k++) {
        let v = kvs[j * RS + tx + TX * k];
        acc[k] += p0 * v;
        acc[DV4 + k] += p1 * v;
        acc[2u * DV4 + k] += p2 * v;
        acc[3u * DV4 + k] += p3 * v;
      }
    }
    workgroupBarrier();   // before the next tile overwrites kvs, red and ps
  }

  // l: the sum over the TX threads of each row
  for (var i = 0u; i < 4u; i++) { red[(4u * ty + i) * TX + tx] = lsum[i]; }
  workgroupBarrier();
  for (var i = 0u; i < 4u; i++) {
    let rr = rt.r0 + 4u * ty + i;
    if (rr < rt.rows) {
      var L = 0.0;
      for (var x = 0u; x < TX; x++) { L += red[(4u * ty + i) * TX + x]; }
      let o = q_row(rt, rr) * D4;
      for (var k = 0u; k < DV4; k++) { out[o + tx + TX * k] = acc[i * DV4 + k] / L; }
    }
  }
}
