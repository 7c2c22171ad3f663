// sample: per kept row r of logits [K, V] f32, one token drawn as src/runtime/sample.ts's Sampler filters it, and
// whether the row holds any NaN/±Inf; out[r] = (id, flag) as f32, the layout of argmax.wgsl. One workgroup of WG
// threads per row, grid (1, K); each stage is a pass over the row, strided by WG lanes. Sums are per-lane partials
// added in a fixed tree and atomics only count or hand out slots, so the same inputs give the same token every run.
//   1. v = logits with NaN as −∞, then the repetition penalty (v > 0 ? v · (1/p) : v · p) on the row's history ids
//      (params, distinct ids) → vals [K, V] (scratch; rows without a penalty read the logits, NaN keyed as −∞).
//      y = v · inv (inv = 1/T as f32).
//   2. m = max y; argmax of v (lowest id on ties). inv = 0 (greedy) or m not finite: out = argmax of v.
//   The filters, in the order (y descending, id ascending): top-k keeps its first k (0 < k < V); w = exp(y − m) (f32);
//   min-p keeps w ≥ minP; top-p (p < 1): goal = p · Σ_{top-k} w, and when the min-p survivors hold at least goal,
//   the shortest prefix of them whose mass reaches it. Two ways to find them:
//   3a. fast path (top-k or min-p > 0): a pass counts tokens in 512 bins of m − y (1/16 wide); the bins bound the
//      tokens top-k (with its mass) or min-p can keep. When ≤ 1024 lie within the bound, a pass gathers them into
//      workgroup memory, a bitonic sort orders them and lane 0 walks the filters along the order.
//   3b. otherwise, threshold searches on order-preserving u32 keys of y, 4 bits a round (15 thresholds counted at
//      once, 8 rounds): t_k with #{key ≥ t_k} ≥ k, ties at t_k cut by id (6 rounds over ids); t_p, the largest key
//      whose suffix mass over the top-k ∩ min-p survivors reaches goal, ties cut by id the same way.
//   4. Gumbel-max: the candidate of largest y + g_i, g_i = −log(E_i), E_i = −log(u_i) with u_i from a counter-based
//      hash of (seed, stream, step, i); see sample.ref.ts for the hash and E's two formulas. Lowest id on ties.
// Loops whose bound is a define are written against dims (z = 16, w = WG / 8) so that the compiler keeps them
// rolled: unrolled, the shader took over a minute to compile on lavapipe.
// Bindings: logits [K, V] f32; params [K, P] f32 (sample.ref.ts PARAM_*: 1/T, top-k, top-p, min-p, penalty, seed as
// 4 × 16 bits, step as 2 × 16 bits, stream, history count, 1/penalty, 0, 0, then P − 16 history ids); vals [K, V]
// f32 scratch; out [K, 2] f32; ids [K] u32 (the id again, which a pipelined decode step feeds to itself on the
// device, as argmax's). dims uniform: V, P, 16, WG / 8. Defines: WG = 128 (hist is 16 · WG u32; lanes < 128 sum it).
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> vals: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> ids: array<u32>;
@group(0) @binding(5) var<uniform> dims: vec4u;   // V, P, 16 (digits a round), WG / 8 (loop bounds the compiler cannot unroll; WG / 2 = 4 · dims.w)

const NEG_INF_BITS = 0xff800000u;
const NEG_INF_KEY = 0x007fffffu;   // key(−∞)
const NONE = 0xffffffffu;
const NB = 512u;         // fast path: bins of m − y, 1/16 wide (the last one: m − y ≥ 31.9375, or −∞)
const SCALE = 16.0;
const CAP = 1024u;       // fast path: candidates it holds (keys at hist[0, CAP), ids at hist[CAP, 2·CAP))

var<workgroup> hist: array<u32, 16 * WG>;   // f32 bits: the searches' columns; or the fast path's list
var<workgroup> bins: array<atomic<u32>, NB>;
var<workgroup> cnt: atomic<u32>;
var<workgroup> part: array<f32, 128>;
var<workgroup> ra: array<u32, WG>;
var<workgroup> rb: array<u32, WG>;
var<workgroup> rc: array<u32, WG>;
var<workgroup> rd: array<u32, WG>;
var<workgroup> bu: vec4u;

// Order-preserving u32 key of a value (−0 as +0, NaN as −∞), as argmax.wgsl.
fn key(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) == 0u) { b = 0u; }
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u) { b = NEG_INF_BITS; }
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn is_nan(x: f32) -> bool {
  let b = bitcast<u32>(x);
  return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}

// v at flat index j: the logit (unpenalised rows) or the penalised copy
fn val(j: u32, penalised: bool) -> f32 {
  if (penalised) { return vals[j]; }
  return logits[j];
}

// −∞ at run time (a constant −∞ is a WGSL error)
fn neg_inf() -> f32 { var b = NEG_INF_BITS; return bitcast<f32>(b); }

fn unkey(k: u32) -> f32 { return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u)); }

fn better(v: u32, i: u32, w: u32, j: u32) -> bool { return v > w || (v == w && i < j); }

fn hadd(j: u32, x: f32) { hist[j] = bitcast<u32>(bitcast<f32>(hist[j]) + x); }

// fast path: list entry a comes before entry b in the order (key descending, id ascending)
fn before(a: u32, b: u32) -> bool {
  let ka = hist[a];
  let kb = hist[b];
  return ka > kb || (ka == kb && hist[CAP + a] < hist[CAP + b]);
}

// fast path: the bin of a finite y (m − y ≥ 0)
fn bin_of(m: f32, y: f32) -> u32 { return min(NB - 1u, u32(min(m - y, 64.0) * SCALE)); }

// Digit d's total after a round's column sums (lane 0 only).
fn digit(d: u32) -> f32 {
  var t = 0.0;
  for (var p = 0u; p < dims.z / 2u; p++) { t += part[d * 8u + p]; }
  return t;
}

// The row's filters so far: top-k (key > tk, or = tk with id ≤ ck), min-p, top-p (key > tp, or = tp with id ≤ cp).
struct Filt { m: f32, minP: f32, tk: u32, ck: u32, tp: u32, cp: u32 }

fn weight(f: Filt, y: f32, ky: u32) -> f32 {
  if (ky <= NEG_INF_KEY) { return 0.0; }
  return exp(y - f.m);
}

fn inK(f: Filt, ky: u32, i: u32) -> bool { return ky > f.tk || (ky == f.tk && i <= f.ck); }
fn inP(f: Filt, ky: u32, i: u32) -> bool { return ky > f.tp || (ky == f.tp && i <= f.cp); }
fn inMin(f: Filt, w: f32) -> bool { return f.minP == 0.0 || w >= f.minP; }

// lowbias32 (a 32-bit integer finaliser): the counter-based hash of the draw; sample.ref.ts has the same.
fn mix(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// E ~ Exp(1) from 24 random bits: u = (h + ½) / 2^24; −log(u) for u < ½, else 2·atanh((1−u)/(1+u)) as a series
// (accurate where log(u) ≈ 0 loses relative precision on GPUs).
fn expo(h: u32) -> f32 {
  let b = h >> 8u;
  if (b < 0x800000u) { return -log((f32(b) + 0.5) * (1.0 / 16777216.0)); }
  let q = (f32(0x1000000u - b) - 0.5) * (1.0 / 16777216.0);   // 1 − u, exact
  let s = q / (2.0 - q);
  let s2 = s * s;
  var t = 1.0 / 17.0;
  for (var j = 15; j >= 1; j -= 2) { t = t * s2 + 1.0 / f32(j); }
  return 2.0 * s * t;
}

@compute @workgroup_size(WG)
fn sample(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u) {
  let V = dims.x;
  let P = dims.y;
  let r = g.y;
  let base = r * V;
  let pb = r * P;
  let inv = params[pb];
  let topK = u32(params[pb + 1u]);
  let topP = params[pb + 2u];
  let minP = params[pb + 3u];
  let pen = params[pb + 4u];
  let nh = min(u32(params[pb + 12u]), P - 16u);
  let ipen = params[pb + 13u];

  // 1. v: without a penalty the logits themselves (a NaN's key is −∞'s), else vals
  let penalised = pen != 1.0;
  if (penalised) {
    for (var i = li; i < V; i += WG) {
      let x = logits[base + i];
      vals[base + i] = select(x, neg_inf(), is_nan(x));
    }
    storageBarrier();
    for (var j = li; j < nh; j += WG) {
      let id = u32(params[pb + 16u + j]);
      if (id >= V) { continue; }
      let x = logits[base + id];
      if (is_nan(x)) { continue; }   // stays −∞
      vals[base + id] = select(x * pen, x * ipen, x > 0.0);
    }
    storageBarrier();
  }

  // 2. max y, argmax v, flag
  var flag = 0u;
  var ymax = 0u;
  var vbest = 0u;
  var vid = NONE;
  for (var i = li; i < V; i += WG) {
    let x = logits[base + i];
    if ((bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u) { flag = 1u; }   // NaN or ±Inf (a bit test: no x != x under fast math)
    var v = x;
    if (penalised) { v = vals[base + i]; }
    let kv = key(v);
    if (better(kv, i, vbest, vid)) { vbest = kv; vid = i; }
    ymax = max(ymax, key(v * inv));
  }
  ra[li] = vbest; rb[li] = vid; rc[li] = ymax; rd[li] = flag;
  workgroupBarrier();
  for (var s = dims.w * 4u; s > 0u; s >>= 1u) {
    if (li < s) {
      if (better(ra[li + s], rb[li + s], ra[li], rb[li])) { ra[li] = ra[li + s]; rb[li] = rb[li + s]; }
      rc[li] = max(rc[li], rc[li + s]);
      rd[li] |= rd[li + s];
    }
    workgroupBarrier();
  }
  if (li == 0u) { bu = vec4u(select(rb[0], 0u, rb[0] == NONE), rc[0], rd[0], 0u); }
  let top = workgroupUniformLoad(&bu);
  let argmaxV = top.x;
  let mkey = top.y;
  let rowFlag = f32(top.z);
  let m = unkey(mkey);
  // m not finite: every y −∞ (all masked) or a temperature so small that y left f32's range
  if (inv == 0.0 || mkey <= NEG_INF_KEY || mkey >= 0xff800000u) {
    if (li == 0u) { out[2u * r] = f32(argmaxV); out[2u * r + 1u] = rowFlag; ids[r] = argmaxV; }
    return;
  }

  var f = Filt(m, minP, 0u, NONE, 0u, NONE);
  let kOn = topK > 0u && topK < V;
  let pOn = topP < 1.0;

  // 3a. Fast path (top-k, or min-p > 0): one pass counts the tokens per bin of m − y; the bins give a bound holding
  // every token that top-k (with its mass, which top-p measures against) or min-p can keep. When at most CAP tokens
  // lie within it, one more pass gathers them, a bitonic sort puts them in the order, lane 0 walks the filters along
  // it, and the draw runs over the survivors: three passes over the row instead of the searches' ~20.
  if (kOn || minP > 0.0) {
    for (var b = li; b < NB; b += WG) { atomicStore(&bins[b], 0u); }
    if (li == 0u) { atomicStore(&cnt, 0u); }
    workgroupBarrier();
    var zl = 0.0;
    for (var i = li; i < V; i += WG) {
      let y = val(base + i, penalised) * inv;
      if (key(y) <= NEG_INF_KEY) { atomicAdd(&bins[NB - 1u], 1u); continue; }
      atomicAdd(&bins[bin_of(m, y)], 1u);
      if (!kOn) { zl += exp(y - m); }
    }
    hist[li] = bitcast<u32>(zl);
    workgroupBarrier();
    if (li == 0u) {
      var bk = NB - 1u;
      var c = 0u;
      if (kOn) {
        for (var b = 0u; b < NB; b++) { c += atomicLoad(&bins[b]); if (c >= topK) { bk = b; break; } }
      }
      var bm = NB - 1u;
      if (minP > 0.0) { bm = min(NB - 1u, u32(min(-log(minP), 64.0) * SCALE) + 1u); }
      var B = bm;
      if (kOn) { B = select(min(bk, bm), bk, pOn); }
      var C = 0u;
      for (var b = 0u; b <= B; b++) { C += atomicLoad(&bins[b]); }
      var np = 1u;
      while (np < C) { np <<= 1u; }
      var zall = 0.0;
      for (var t = 0u; t < WG; t++) { zall += bitcast<f32>(hist[t]); }
      bu = vec4u(select(0u, 1u, B < NB - 1u && C <= CAP), B, C, np);
      part[0] = zall;
    }
    let fb = workgroupUniformLoad(&bu);
    if (fb.x == 1u) {
      let B = fb.y;
      let C = fb.z;
      let np = max(fb.w, 2u);
      for (var i = li; i < V; i += WG) {
        let y = val(base + i, penalised) * inv;
        let ky = key(y);
        if (ky <= NEG_INF_KEY || bin_of(m, y) > B) { continue; }
        let j = atomicAdd(&cnt, 1u);
        if (j < CAP) { hist[j] = ky; hist[CAP + j] = i; }   // C ≤ CAP; the guard keeps hist in bounds by construction
      }
      for (var j = C + li; j < np; j += WG) { hist[j] = 0u; hist[CAP + j] = NONE; }
      workgroupBarrier();
      for (var k2 = 2u; k2 <= np; k2 <<= 1u) {
        for (var j2 = k2 >> 1u; j2 > 0u; j2 >>= 1u) {
          for (var t = li; t < np; t += WG) {
            let q = t ^ j2;
            if (q > t) {
              let up = (t & k2) == 0u;
              if ((up && before(q, t)) || (!up && before(t, q))) {
                let kt = hist[t]; let it = hist[CAP + t];
                hist[t] = hist[q]; hist[CAP + t] = hist[CAP + q];
                hist[q] = kt; hist[CAP + q] = it;
              }
            }
          }
          workgroupBarrier();
        }
      }
      // lane 0 walks the order: top-k, min-p, top-p (the same rules as the searches)
      if (li == 0u) {
        var nk = C;
        if (kOn) { nk = min(topK, C); }
        var z = part[0];
        if (kOn) {
          z = 0.0;
          for (var j = 0u; j < nk; j++) { z += exp(unkey(hist[j]) - m); }
        }
        var n = 0u;
        var mass = 0.0;
        loop {
          if (n >= nk) { break; }
          let w = exp(unkey(hist[n]) - m);
          if (minP > 0.0 && !(w >= minP)) { break; }
          mass += w;
          n++;
        }
        if (pOn && mass >= topP * z) {
          let goal = topP * z;
          var cum = 0.0;
          var j = 0u;
          loop {
            if (j >= n) { break; }
            cum += exp(unkey(hist[j]) - m);
            j++;
            if (cum >= goal) { break; }
          }
          n = j;
        }
        bu = vec4u(n, 0u, 0u, 0u);
      }
      let nc = workgroupUniformLoad(&bu).x;
      let s0 = u32(params[pb + 5u]) | (u32(params[pb + 6u]) << 16u);
      let s1 = u32(params[pb + 7u]) | (u32(params[pb + 8u]) << 16u);
      let stepc = u32(params[pb + 9u]) | (u32(params[pb + 10u]) << 16u);
      let rk = mix(mix(mix(mix(s0 ^ 0x9e3779b9u) ^ s1) ^ u32(params[pb + 11u])) ^ stepc);
      var best = 0u;
      var bid = NONE;
      for (var j = li; j < nc; j += WG) {
        let i = hist[CAP + j];
        let sc = key(unkey(hist[j]) - log(expo(mix(rk ^ mix(i ^ 0x632be5abu)))));
        if (better(sc, i, best, bid)) { best = sc; bid = i; }
      }
      ra[li] = best; rb[li] = bid;
      workgroupBarrier();
      for (var s = dims.w * 4u; s > 0u; s >>= 1u) {
        if (li < s && better(ra[li + s], rb[li + s], ra[li], rb[li])) { ra[li] = ra[li + s]; rb[li] = rb[li + s]; }
        workgroupBarrier();
      }
      if (li == 0u) {
        let id = select(rb[0], argmaxV, rb[0] == NONE);
        out[2u * r] = f32(id);
        out[2u * r + 1u] = rowFlag;
        ids[r] = id;
      }
      return;
    }
  }

  // 3b. The threshold searches, as stages of one loop (one copy of the pass and its reduction):
  //   0 top-k key: tk = the largest t with #{key ≥ t} ≥ k (8 rounds of 4 bits)
  //   1 top-k ties (when #{key ≥ tk} > k): ck = the largest c with #{key > tk} + #{key = tk, id < c} < k (6 rounds)
  //   2 top-p tally: z = Σ_{top-k} w, have = Σ_{top-k ∩ min-p} w; goal = p · z (1 round)
  //   3 top-p key (when have ≥ goal): tp = the largest t with Σ_{S, key ≥ t} w ≥ goal, S = top-k ∩ min-p
  //   4 top-p tie count: #{S, key = tp} (1 round)
  //   5 top-p ties (when that count > 1): cp = the largest c with Σ_{S, key > tp or (= tp, id < c)} w < goal
  // A round: each lane adds each value into its column of hist[digit][lane] (no atomics), a fixed tree sums the
  // columns, lane 0 picks the digit and broadcasts the new prefix.
  // loop bounds from the uniform (16 digits, WG / 8 columns): rolled loops keep the shader small to compile
  let nd = dims.z;
  let nc8 = dims.w;
  var goal = f32(topK);
  var stage = select(select(6u, 2u, pOn), 0u, kOn);
  var prefix = 0u;
  var shift = 28u;
  var fsel = f32(V);
  loop {
    if (stage >= 6u) { break; }
    for (var d = 0u; d < nd; d++) { hist[d * WG + li] = 0u; }
    let isKey = stage == 0u || stage == 3u;
    let tie = select(f.tp, f.tk, stage == 1u);
    for (var i = li; i < V; i += WG) {
      let y = val(base + i, penalised) * inv;
      let ky = key(y);
      var x = 1.0;
      if (stage >= 2u) {
        if (!inK(f, ky, i)) { continue; }
        x = weight(f, y, ky);
        if (stage == 2u) {
          hadd(li, x);
          if (inMin(f, x)) { hadd(WG + li, x); }
          continue;
        }
        if (!inMin(f, x)) { continue; }
        if (stage == 4u) {
          if (ky == f.tp) { hadd(li, 1.0); }
          continue;
        }
      }
      var d = 16u;
      if (isKey) {
        if (ky >= prefix) { d = min(15u, (ky - prefix) >> shift); }
      } else if (ky > tie || (ky == tie && i < prefix)) {
        d = 0u;
      } else if (ky == tie) {
        d = min(16u, ((i - prefix) >> shift) + 1u);
      }
      if (d < 16u) { hadd(d * WG + li, x); }
    }
    // sum the columns in a fixed order: lane l < 128 adds the WG/8 columns of part l % 8 of digit l / 8 into
    // hist[digit][part], then lane 0 adds the 8 parts of each digit it reads
    workgroupBarrier();
    if (li < 128u) {
      let d = li >> 3u;
      let p0 = (li & 7u) * (WG / 8u);
      var acc = 0.0;
      for (var c = 0u; c < nc8; c++) { acc += bitcast<f32>(hist[d * WG + p0 + c]); }
      part[li] = acc;
    }
    workgroupBarrier();
    if (li == 0u) {
      // bu = (next stage, prefix, shift, fsel bits); digits are hist[d · WG]
      var ns = stage;
      var np = prefix;
      var nsh = shift;
      var nf = fsel;
      if (isKey) {
        var acc = 0.0;
        for (var j = nd - 1u; j >= 1u; j--) {
          acc += digit(j);
          if (acc >= goal) { np = prefix | (j << shift); nf = acc; break; }
        }
      } else if (stage == 1u || stage == 5u) {
        var acc = 0.0;
        var jb = 0u;
        for (var j = 0u; j < nd; j++) {
          acc += digit(j);
          if (acc < goal) { jb = j; }
        }
        np = prefix | (jb << shift);
      } else if (stage == 2u) {
        nf = topP * digit(0u);          // goal
        np = bitcast<u32>(digit(1u));  // have
      } else {
        nf = digit(0u);                 // ties at tp
      }
      bu = vec4u(ns, np, nsh, bitcast<u32>(nf));
    }
    let b = workgroupUniformLoad(&bu);
    prefix = b.y;
    let got = bitcast<f32>(b.w);
    if (isKey && shift > 0u) { shift -= 4u; fsel = got; continue; }
    if ((stage == 1u || stage == 5u) && shift > 0u) { shift -= 4u; continue; }
    // the stage is done: record its result and choose the next
    switch (stage) {
      case 0u: {
        f.tk = prefix;
        fsel = got;
        stage = select(select(6u, 2u, pOn), 1u, got > goal);
      }
      case 1u: { f.ck = prefix; stage = select(6u, 2u, pOn); }
      case 2u: { goal = got; stage = select(6u, 3u, bitcast<f32>(prefix) >= goal); }
      case 3u: { f.tp = prefix; stage = 4u; }
      case 4u: { stage = select(6u, 5u, got > 1.0); }
      default: { f.cp = prefix; stage = 6u; }
    }
    prefix = 0u;
    shift = select(28u, 20u, stage == 1u || stage == 5u);
  }

  // 4. Gumbel-max over the candidates
  let s0 = u32(params[pb + 5u]) | (u32(params[pb + 6u]) << 16u);
  let s1 = u32(params[pb + 7u]) | (u32(params[pb + 8u]) << 16u);
  let stepc = u32(params[pb + 9u]) | (u32(params[pb + 10u]) << 16u);
  let rowKey = mix(mix(mix(mix(s0 ^ 0x9e3779b9u) ^ s1) ^ u32(params[pb + 11u])) ^ stepc);
  var best = 0u;
  var bid = NONE;
  for (var i = li; i < V; i += WG) {
    let y = val(base + i, penalised) * inv;
    let ky = key(y);
    if (ky <= NEG_INF_KEY || !inK(f, ky, i) || !inP(f, ky, i)) { continue; }
    if (!inMin(f, weight(f, y, ky))) { continue; }
    let sc = key(y - log(expo(mix(rowKey ^ mix(i ^ 0x632be5abu)))));
    if (better(sc, i, best, bid)) { best = sc; bid = i; }
  }
  ra[li] = best; rb[li] = bid;
  workgroupBarrier();
  for (var s = dims.w * 4u; s > 0u; s >>= 1u) {
    if (li < s && better(ra[li + s], rb[li + s], ra[li], rb[li])) { ra[li] = ra[li + s]; rb[li] = rb[li + s]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    let id = select(rb[0], argmaxV, rb[0] == NONE);
    out[2u * r] = f32(id);
    out[2u * r + 1u] = rowFlag;
    ids[r] = id;
  }
}
