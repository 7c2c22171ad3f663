// delta_chunk_state_rb: delta_chunk_state's wide pass (VX: δ overwrites x in one vec4 token block; see there for the
// math, spec-deltanet-attention-qwen3next.md §10 steps 3–5) register-blocked over value columns: each thread owns CPT
// columns c + k·NC (NC = BV / CPT, k < CPT) of its row group, so every q̂/k̂ and T/B load from memory feeds CPT columns'
// FMAs (delta_chunk_state: one). The same sums in the same order as delta_chunk_state (VX) column by column.
// Bindings: as delta_chunk_state. Dispatch: (HV·DV/BV, B) workgroups of NC·G threads; thread (g, c) owns local columns
// c + k·NC and the chunk rows i ≡ g (mod G) in the token phases, the state rows 4a4 … 4a4 + 3 for a4 ≡ g (mod G) in the
// state update. Runtime dims: (H, HV, DV), _, (vS, vO). Defines: DK4 = DK / 4, BV, G, CH, QPT = CH / G, CPT, V_SILU.
// f32; four barriers per chunk.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qk: array<vec4f>;         // [2, cap, H·DK]
@group(0) @binding(3) var<storage, read> v: array<f32>;            // [N, HV·DV]
@group(0) @binding(4) var<storage, read> gates: array<f32>;        // [3, cap, HV]
@group(0) @binding(5) var<storage, read> ab: array<vec4f>;         // [3, cap, HV·CH] as vec4 (CH a multiple of 4)
@group(0) @binding(6) var<storage, read_write> state: array<f32>;  // [slots, HV, DK, DV]
@group(0) @binding(7) var<storage, read_write> o: array<f32>;      // [N, HV·DV]
@group(0) @binding(8) var<uniform> dims: array<vec4u, 4>;          // (H, HV, DV), _, (vS, vO, _, _), _

const NC: u32 = BV / CPT;
const RS: u32 = DK4 + 1u;
var<workgroup> St: array<vec4f, BV * RS>;       // S[4a4 .. 4a4+3][c] at c·RS + a4
const XS4: u32 = CH / 4u + 1u;                  // token-block row stride (vec4)
var<workgroup> sh_x: array<vec4f, BV * XS4>;    // x, then δ: x[j][c] at (c·XS4 + j / 4)[j % 4]
var<workgroup> sh_e: array<vec4f, CH / 4u>;     // e^{G_{n−1} − G_j} at (j / 4)[j % 4]

fn xrow(c: u32, j4: u32) -> vec4f { return sh_x[c * XS4 + j4]; }
fn setx(c: u32, i: u32, x: f32) { sh_x[c * XS4 + i / 4u][i % 4u] = x; }
fn xat(c: u32, j: u32) -> f32 { return sh_x[c * XS4 + j / 4u][j % 4u]; }
fn eat(j: u32) -> f32 { return sh_e[j / 4u][j % 4u]; }

@compute @workgroup_size(NC * G)
fn delta_chunk_state_rb(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let H = dims[0].x;
  let HV = dims[0].y;
  let DV = dims[0].z;
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let nb = DV / BV;
  let hv = wg.x / nb;
  let c = l.x % NC;
  let g = l.x / NC;
  let col0 = (wg.x % nb) * BV + c;   // column k: col0 + k·NC, local c + k·NC
  let h = hv / (HV / H);
  let cu = cursor(seq);
  let start = cu.start;
  let end = start + cu.len;
  let base = (cu.slot * HV + hv) * DK4 * 4u * DV + col0;
  for (var a4 = g; a4 < DK4; a4 += G) {
    for (var k = 0u; k < CPT; k++) {
      let a = base + k * NC + 4u * a4 * DV;
      St[(c + k * NC) * RS + a4] = vec4f(state[a], state[a + DV], state[a + 2u * DV], state[a + 3u * DV]);
    }
  }
  workgroupBarrier();
  let scale = inverseSqrt(f32(DK4 * 4u));
  let kplane = step.cap * H * DK4;
  let gplane = step.cap * HV;
  let bplane = step.cap * HV * CH;
  for (var cs = start; cs < end; cs += CH) {
    let n = min(CH, end - cs);
    var ks = array<f32, QPT * CPT>();   // [m·CPT + k]
    var qs = array<f32, QPT * CPT>();
    for (var a4 = 0u; a4 < DK4; a4++) {
      var s: array<vec4f, CPT>;
      for (var k = 0u; k < CPT; k++) { s[k] = St[(c + k * NC) * RS + a4]; }
      for (var m = 0u; m < QPT; m++) {
        let i = min(g + m * G, n - 1u);   // rows past the chunk repeat its last (never stored)
        let ok = ((cs + i) * H + h) * DK4 + a4;
        let kv = qk[kplane + ok];
        let qv = qk[ok];
        for (var k = 0u; k < CPT; k++) {
          ks[m * CPT + k] += dot(kv, s[k]);
          qs[m * CPT + k] += dot(qv, s[k]);
        }
      }
    }
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let t = cs + i;
        let beta = gates[gplane + t * HV + hv];
        let eg = exp(gates[2u * gplane + t * HV + hv]);
        for (var k = 0u; k < CPT; k++) {
          var vc = v[t * dims[2].x + dims[2].y + hv * DV + col0 + k * NC];
          if (V_SILU) { vc = vc * sigmoid(vc); }
          setx(c + k * NC, i, beta * (vc - eg * ks[m * CPT + k]));
        }
      }
    }
    workgroupBarrier();
    var ds = array<f32, QPT * CPT>();
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        // T[i][j] = 0 for j > i (the solve writes the whole row), so the last vec4 may run past i
        let trow = (2u * bplane + (cs + i) * HV * CH + hv * CH) / 4u;
        var d: array<f32, CPT>;
        for (var k = 0u; k < CPT; k++) { d[k] = 0.0; }
        for (var j4 = 0u; j4 <= i / 4u; j4++) {
          let tr = ab[trow + j4];
          for (var k = 0u; k < CPT; k++) { d[k] += dot(tr, xrow(c + k * NC, j4)); }
        }
        for (var k = 0u; k < CPT; k++) { ds[m * CPT + k] = d[k]; }
      }
    }
    let GL = gates[2u * gplane + (cs + n - 1u) * HV + hv];
    workgroupBarrier();   // every x read
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        for (var k = 0u; k < CPT; k++) { setx(c + k * NC, i, ds[m * CPT + k]); }
        if (c == 0u) { sh_e[i / 4u][i % 4u] = exp(GL - gates[2u * gplane + (cs + i) * HV + hv]); }
      }
    }
    workgroupBarrier();
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let t = cs + i;
        let Gi = gates[2u * gplane + t * HV + hv];
        let brow = (bplane + t * HV * CH + hv * CH) / 4u;   // B[i][j] = 0 for j > i (delta_chunk_kkt)
        var acc: array<f32, CPT>;
        for (var k = 0u; k < CPT; k++) { acc[k] = scale * exp(Gi) * qs[m * CPT + k]; }
        for (var j4 = 0u; j4 <= i / 4u; j4++) {
          let br = ab[brow + j4];
          for (var k = 0u; k < CPT; k++) { acc[k] += dot(br, xrow(c + k * NC, j4)); }
        }
        for (var k = 0u; k < CPT; k++) { o[t * HV * DV + hv * DV + col0 + k * NC] = acc[k]; }
      }
    }
    // no barrier: the state update reads sh_x and sh_e as the o rows above do, and each thread's own rows of St
    let eL = exp(GL);
    let HK = H * DK4;
    for (var a4 = g; a4 < DK4; a4 += G) {
      var s: array<vec4f, CPT>;
      for (var k = 0u; k < CPT; k++) { s[k] = St[(c + k * NC) * RS + a4] * eL; }
      let kr = kplane + (cs * H + h) * DK4 + a4;   // k̂ row cs + j at kr + j·H·DK4
      for (var j4 = 0u; j4 < n / 4u; j4++) {
        let e4 = sh_e[j4];
        let r = kr + 4u * j4 * HK;
        let k0 = qk[r];
        let k1 = qk[r + HK];
        let k2 = qk[r + 2u * HK];
        let k3 = qk[r + 3u * HK];
        for (var k = 0u; k < CPT; k++) {
          let u = e4 * xrow(c + k * NC, j4);
          var sk = fma(k0, vec4f(u.x), s[k]);
          sk = fma(k1, vec4f(u.y), sk);
          sk = fma(k2, vec4f(u.z), sk);
          s[k] = fma(k3, vec4f(u.w), sk);
        }
      }
      for (var j = n / 4u * 4u; j < n; j++) {
        let kj = qk[kr + j * HK];
        for (var k = 0u; k < CPT; k++) { s[k] = fma(kj, vec4f(eat(j) * xat(c + k * NC, j)), s[k]); }
      }
      for (var k = 0u; k < CPT; k++) { St[(c + k * NC) * RS + a4] = s[k]; }
    }
    workgroupBarrier();
  }
  for (var a4 = g; a4 < DK4; a4 += G) {
    for (var k = 0u; k < CPT; k++) {
      let a = base + k * NC + 4u * a4 * DV;
      let s = St[(c + k * NC) * RS + a4];
      state[a] = s.x;
      state[a + DV] = s.y;
      state[a + 2u * DV] = s.z;
      state[a + 3u * DV] = s.w;
    }
  }
}
