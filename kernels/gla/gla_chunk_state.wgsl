// gla_chunk_state: the pass over each sequence's chunks of the chunked GLA prefill (spec-rwkv7-gla-abc.md §2.4,
// chunk_gla). Per chunk (tokens cs..cs+n−1, local i, j), value column c, incoming state S_in (DK × BV block of the
// query head's S, in workgroup memory):
//   o_ic = Σ_a qg_ia·S_in[a][c] + Σ_{j≤i} A_ij·v_jc          (qg = SCALE·FMAP(q)·e^{B_i}, A from gla_chunk_attn)
//   S[a][c] ← e^{B_{n−1,a}}·S_in[a][c] + Σ_j kg_ja·v_jc      (kg = FMAP(k)·e^{B_{n−1} − B_j})
// which is the recurrence S ← e^{g_t}·S + k_t v_tᵀ, o_t = (SCALE·q_t)ᵀ S of gla_recurrent, a chunk at a time.
// Bindings: step uniform; stepmeta u32 (cursors); qb [2, cap, H·DK] (qf, qg); kb [3, cap, HKV·DK] (B, kf, kg);
// v [N, HKV·DV]; A [cap, H·CH]; state [slots, H, DK, DV] f32 (S[i][j], i = key); o [N, H·DV].
// Dispatch: (H·DV/BV, B) workgroups of BV·G threads: thread (g, c) owns column c and the chunk rows i ≡ g (mod G)
// for the output, the state rows 4a4 … 4a4 + 3 for a4 ≡ g (mod G) for the update. S_in is held transposed (St[c][a4],
// vec4 over 4 key rows, row stride DK/4 + 1 vec4), qg and kg read as vec4: the q·S dots and the update are vec4 ops. Query head h reads kv head ⌊h·HKV/H⌋.
// Runtime dims: H, HKV, DV. Defines: DK, BV, G, CH, QPT = CH / G, HAS_GATE. f32; three barriers per chunk.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> stepmeta: array<u32>;
@group(0) @binding(2) var<storage, read> qb: array<vec4f>;         // [2, cap, H·DK] as vec4 (DK a multiple of 4)
@group(0) @binding(3) var<storage, read> kb: array<vec4f>;         // [3, cap, HKV·DK] as vec4
@group(0) @binding(4) var<storage, read> v: array<f32>;            // [N, HKV·DV]
@group(0) @binding(5) var<storage, read> A: array<f32>;            // [cap, H·CH]
@group(0) @binding(6) var<storage, read_write> state: array<f32>;  // [slots, H, DK, DV]
@group(0) @binding(7) var<storage, read_write> o: array<f32>;      // [N, H·DV]
@group(0) @binding(8) var<uniform> dims: vec4u;                    // H, HKV, DV

const DK4: u32 = DK / 4u;
const RS: u32 = DK4 + 1u;
var<workgroup> St: array<vec4f, BV * RS>;   // S[4a4 .. 4a4+3][c] at c·RS + a4
var<workgroup> sh_v: array<f32, CH * BV>;   // v of the chunk, v[j][c] at j·BV + c

@compute @workgroup_size(BV * G)
fn gla_chunk_state(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {
  let H = dims.x;
  let HKV = dims.y;
  let DV = dims.z;
  let seq = wg.y;
  if (seq >= step.b) { return; }
  let nb = DV / BV;
  let h = wg.x / nb;
  let c = l.x % BV;
  let g = l.x / BV;
  let col = (wg.x % nb) * BV + c;
  let hk = h / (H / HKV);
  let cu = cursor(seq);
  let slot = cu.slot;
  let start = cu.start;
  let end = start + cu.len;
  let base = (slot * H + h) * DK * DV + col;
  for (var a4 = g; a4 < DK4; a4 += G) {
    let a = base + 4u * a4 * DV;
    St[c * RS + a4] = vec4f(state[a], state[a + DV], state[a + 2u * DV], state[a + 3u * DV]);
  }
  let KW = HKV * DK;
  let kplane = step.cap * KW;
  let qplane = step.cap * H * DK;
  for (var cs = start; cs < end; cs += CH) {
    let n = min(CH, end - cs);
    for (var j = g; j < n; j += G) { sh_v[j * BV + c] = v[((cs + j) * HKV + hk) * DV + col]; }
    workgroupBarrier();
    var qs = array<f32, QPT>();
    for (var a4 = 0u; a4 < DK4; a4++) {
      let s = St[c * RS + a4];
      for (var m = 0u; m < QPT; m++) {
        let t = cs + min(g + m * G, n - 1u);   // rows past the chunk repeat its last (never stored)
        qs[m] += dot(qb[(qplane + (t * H + h) * DK) / 4u + a4], s);
      }
    }
    for (var m = 0u; m < QPT; m++) {
      let i = g + m * G;
      if (i < n) {
        let t = cs + i;
        var acc = qs[m];
        let arow = (t * H + h) * CH;
        for (var j = 0u; j <= i; j++) { acc = fma(A[arow + j], sh_v[j * BV + c], acc); }
        o[(t * H + h) * DV + col] = acc;
      }
    }
    workgroupBarrier();
    let lrow = (cs + n - 1u) * KW + hk * DK;
    for (var a4 = g; a4 < DK4; a4 += G) {
      var s = St[c * RS + a4];
      if (HAS_GATE) { s *= exp(kb[lrow / 4u + a4]); }
      for (var j = 0u; j < n; j++) { s = fma(kb[(2u * kplane + (cs + j) * KW + hk * DK) / 4u + a4], vec4f(sh_v[j * BV + c]), s); }
      St[c * RS + a4] = s;
    }
    workgroupBarrier();
  }
  for (var a4 = g; a4 < DK4; a4 += G) {
    let a = base + 4u * a4 * DV;
    let s = St[c * RS + a4];
    state[a] = s.x;
    state[a + DV] = s.y;
    state[a + 2u * DV] = s.z;
    state[a + 3u * DV] = s.w;
  }
}
