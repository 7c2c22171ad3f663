// moe_gemm: the grouped expert GEMM of prefill, one expert segment tile (from moe_group) per workgroup row:
//   GATE_UP: act[a, i] = silu(A[a]·W[e, i]) · (A[a]·W[e, I + i]) with A[a] = h[⌊a / K⌋]   (IN = C, OUT = I)
//   else:    yk[a, o] = act[a]·W[e, o]                                                     (IN = I, OUT = C)
// for the assignments a = t·K + j of each tile of expert e (perm positions [p0, min(p0 + 64, end))), experts of this
// part [E0, E0 + EP) only. W [EP, rows, IN] via wquad(). Tiles: 64 rows × 64 weight rows (GATE_UP: 32 gate rows and
// the 32 matching up rows, so each thread holds both halves of its outputs), K steps of 16 staged in workgroup memory,
// a 4×4 block per thread (as matmul_gemm). f32 accumulate.
// Bindings: step; A f32 (h [N, C] or act [N·K, I]); grp u32 (moe_group); W u32; out f32 (act [N·K, I] or yk [N·K, C]);
// dims (IN, OUT, K, E0), (EP, SC, E), fq; S (fp8).
// Dispatch: (⌈OUT / BN⌉, ⌈N·K / 64⌉ + E) workgroups of 256 threads (y beyond the tile count exit).
// DENSE (the shared expert): one expert (W [rows, IN], E0 = 0, EP = 1) over every token, tile y = tokens
// [64y, 64y + 64), output row = token; grp is not read; dispatch (⌈OUT / BN⌉, ⌈N / 64⌉).
#include "common.wgsl"
#include "wquad.wgsl"

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> A: array<vec4f>;
@group(0) @binding(2) var<storage, read> grp: array<u32>;
@group(0) @binding(3) var<storage, read> W: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> dims: array<vec4u, 3>;
@group(0) @binding(6) var<storage, read> S: array<f32>;          // fp8 block scales (placeholder otherwise)

const BM = 64u;
const BK = 16u;
#if GATE_UP
const BN = 32u;
#else
const BN = 64u;
#endif
var<workgroup> xs: array<f32, BK * BM>;    // [BK][BM]
var<workgroup> ws: array<f32, BK * 64u>;   // [BK][64 weight rows]
var<workgroup> arow: array<u32, BM>;       // A row of each tile row (0xffffffff: past the segment)
var<workgroup> orow: array<u32, BM>;       // output row (the assignment a)
var<workgroup> tile: vec4u;                // expert, first perm position, segment end, live

@compute @workgroup_size(256)
fn moe_gemm(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) g: vec3u) {
  _ = &S;
  let IN = dims[0].x;
  let OUT = dims[0].y;
  let K = dims[0].z;
  let E0 = dims[0].w;
  let EP = dims[1].x;
  let E = dims[1].z;
  let H = E + 2u;
  let NK = step.n * K;
  let P = H + 2u * ((NK + BM - 1u) / BM + E);
  if (l.x == 0u) {
    var tv = vec4u(0u);
#if DENSE
    _ = &grp;
    if (g.y * BM < step.n) { tv = vec4u(E0, g.y * BM, step.n, 1u); }
#else
    if (g.y < grp[0]) {
      let e = grp[H + 2u * g.y];
      tv = vec4u(e, grp[H + 2u * g.y + 1u], grp[2u + e], select(0u, 1u, e >= E0 && e < E0 + EP));
    }
#endif
    tile = tv;
  }
  let tv = workgroupUniformLoad(&tile);
  if (tv.w == 0u) { return; }
  let el = tv.x - E0;
  if (l.x < BM) {
    let p = tv.y + l.x;
    var ar = 0xffffffffu;
    var orr = 0u;
    if (p < tv.z) {
#if DENSE
      orr = p;
      ar = p;
#else
      orr = grp[P + p];
      ar = orr;
#if GATE_UP
      ar = orr / K;
#endif
#endif
    }
    arow[l.x] = ar;
    orow[l.x] = orr;
  }
  let col0 = g.x * BN;
  let tx = l.x % 16u;
  let ty = l.x / 16u;
  // staging: thread l loads quad (l % 4) of tile row / weight row l / 4
  let sr = l.x / 4u;
  let sq = l.x % 4u;
#if GATE_UP
  let wrow = select(OUT + col0 + sr - 32u, col0 + sr, sr < 32u);   // gate rows, then the matching up rows
  let wlive = col0 + (sr % 32u) < OUT;
  let wg = el * 2u * OUT + wrow;
#else
  let wlive = col0 + sr < OUT;
  let wg = el * OUT + col0 + sr;
#endif
  var acc: array<array<f32, 4>, 4>;
  workgroupBarrier();
  let ar = arow[sr];
  for (var k0 = 0u; k0 < IN; k0 += BK) {
    let kq = k0 / 4u + sq;
    var xv = vec4f(0.0);
    if (ar != 0xffffffffu && 4u * kq < IN) { xv = A[ar * (IN / 4u) + kq]; }
    var wv = vec4f(0.0);
    if (wlive && 4u * kq < IN) { wv = wquad(wg, kq, IN); }
    for (var c = 0u; c < 4u; c++) {
      xs[(4u * sq + c) * BM + sr] = xv[c];
      ws[(4u * sq + c) * 64u + sr] = wv[c];
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = xs[kk * BM + ty + 16u * i]; b[i] = ws[kk * 64u + tx + 16u * i]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = ty + 16u * i;
    if (arow[r] == 0xffffffffu) { continue; }
    let a = orow[r];
#if GATE_UP
    // weight rows tx, tx + 16 are gate columns col0 + tx, col0 + 16 + tx; rows tx + 32, tx + 48 their up rows
    for (var j = 0u; j < 2u; j++) {
      let o = col0 + tx + 16u * j;
      if (o < OUT) {
        let gv = acc[i][j];
        out[a * OUT + o] = gv / (1.0 + exp(-gv)) * acc[i][j + 2u];
      }
    }
#else
    for (var j = 0u; j < 4u; j++) {
      let o = col0 + tx + 16u * j;
      if (o < OUT) { out[a * OUT + o] = acc[i][j]; }
    }
#endif
  }
}
