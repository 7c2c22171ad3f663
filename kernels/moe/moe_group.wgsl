// moe_group: tokens grouped by expert for the grouped expert GEMM (prefill). From sel [N, 2K] (moe_topk), with the
// N·K assignments i = t·K + j (token t, its j-th expert e = sel[t, j]):
//   grp[0]              number of tiles T
//   grp[1 + e]          start of expert e's segment in perm (grp[1 + E] = N·K)
//   grp[H + 2τ], +1     tile τ: its expert and its first position in perm (segments cut in tiles of BM rows)
//   grp[P + p]          perm: the assignments of each expert's segment (any order inside a segment)
// with H = E + 2 and P = H + 2·(⌈N·K / BM⌉ + E). Experts no token picked have empty segments and no tiles.
// Bindings: step uniform; sel [N, SW] f32 (SW = 2K, or 2K + 1 with a shared gate); grp u32; dims (E, K, BM, SW). Dispatch: one workgroup of 256 threads.
// Counts and cursors are workgroup atomics (E ≤ EMAX); the order inside a segment varies from run to run, which
// changes nothing: every row of the GEMMs is computed on its own.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> sel: array<f32>;          // [N, 2K]
@group(0) @binding(2) var<storage, read_write> grp: array<u32>;
@group(0) @binding(3) var<uniform> dims: vec4u;                     // E, K, BM, SW

const WG = 256u;
var<workgroup> cnt: array<atomic<u32>, EMAX>;
var<workgroup> cur: array<atomic<u32>, EMAX>;

@compute @workgroup_size(WG)
fn moe_group(@builtin(local_invocation_id) l: vec3u) {
  let E = dims.x;
  let K = dims.y;
  let BM = dims.z;
  let NK = step.n * K;
  let H = E + 2u;
  let P = H + 2u * ((NK + BM - 1u) / BM + E);
  for (var e = l.x; e < E; e += WG) { atomicStore(&cnt[e], 0u); }
  workgroupBarrier();
  for (var i = l.x; i < NK; i += WG) { atomicAdd(&cnt[u32(sel[(i / K) * dims.w + i % K])], 1u); }
  workgroupBarrier();
  if (l.x == 0u) {
    var off = 0u;
    var tiles = 0u;
    for (var e = 0u; e < E; e++) {
      let c = atomicLoad(&cnt[e]);
      grp[1u + e] = off;
      atomicStore(&cur[e], off);
      for (var t = 0u; t < c; t += BM) {
        grp[H + 2u * tiles] = e;
        grp[H + 2u * tiles + 1u] = off + t;
        tiles++;
      }
      off += c;
    }
    grp[1u + E] = off;
    grp[0] = tiles;
  }
  workgroupBarrier();
  for (var i = l.x; i < NK; i += WG) {
    let p = atomicAdd(&cur[u32(sel[(i / K) * dims.w + i % K])], 1u);
    grp[P + p] = i;
  }
}
