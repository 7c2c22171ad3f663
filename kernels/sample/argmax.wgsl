// argmax: per kept row r of logits [K, V] f32, the index of the largest value (NaN counts as −∞; ties and an
// all −∞ row give the lowest index, as src/runtime/sample.ts's argmax) and whether the row holds any NaN/±Inf.
// Two passes (FINAL false, then true), one workgroup of WG threads per (segment, row):
//   pass 1, grid (G, K): segment g of each row (V / G values, strided by WG lanes) → part[r, g] = (value key, index, flag)
//   (or the head GEMV's epilogue writes the partials, one per workgroup: matmul_gemv_multi.wgsl ARGMAX, G its workgroups)
//   pass 2, grid (1, K): the G partials of each row → out[r] = (index, 1 if the row had a NaN/±Inf else 0) as f32
//   (exact: ids < 2^24), so that `out` is an ordinary f32 [K, 2] activation on every backend; and ids[r] = the index
//   as u32, which the next decode step copies into its token ids on the device (pipelined decode).
// Bindings: logits [K, V] f32; part [K, 3G] u32 (value key, index, flag); out [K, 2] f32; ids [K] u32.
// dims uniform: V, G.
// Defines: WG (a power of two), FINAL. Value order: argmax_common.wgsl.
#include "argmax_common.wgsl"

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> part: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> ids: array<u32>;
@group(0) @binding(4) var<uniform> dims: vec4u;   // V, G

var<workgroup> bv: array<u32, WG>;
var<workgroup> bi: array<u32, WG>;
var<workgroup> bf: array<u32, WG>;

@compute @workgroup_size(WG)
fn argmax(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) g: vec3u) {
  let V = dims.x;
  let G = dims.y;
  let r = g.y;
  var best = 0u;
  var idx = 0xffffffffu;
  var flag = 0u;
  if (FINAL) {
    for (var j = li; j < G; j += WG) {
      let p = 3u * (r * G + j);
      let v = part[p];
      let i = part[p + 1u];
      if (argmax_better(v, i, best, idx)) { best = v; idx = i; }
      flag |= part[p + 2u];
    }
  } else {
    let seg = (V + G - 1u) / G;
    let lo = g.x * seg;
    let hi = min(V, lo + seg);
    for (var i = lo + li; i < hi; i += WG) {
      let x = logits[r * V + i];
      if (argmax_nonfinite(x)) { flag = 1u; }
      let v = argmax_key(x);
      if (argmax_better(v, i, best, idx)) { best = v; idx = i; }
    }
  }
  bv[li] = best;
  bi[li] = idx;
  bf[li] = flag;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) {
      if (argmax_better(bv[li + s], bi[li + s], bv[li], bi[li])) { bv[li] = bv[li + s]; bi[li] = bi[li + s]; }
      bf[li] |= bf[li + s];
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    if (FINAL) {
      let id = select(bi[0], 0u, bi[0] == 0xffffffffu);
      out[2u * r] = f32(id);
      out[2u * r + 1u] = f32(bf[0]);
      ids[r] = id;
    } else {
      let p = 3u * (r * G + g.x);
      part[p] = bv[0];
      part[p + 1u] = bi[0];
      part[p + 2u] = bf[0];
    }
  }
}
