// sdpa_combine: the second pass of split-K attention (sdpa_split.wgsl): out = Σ_s e^{m_s − M} acc_s / Σ_s e^{m_s − M} l_s
// with M = max_s m_s, over the S partials of each (token, head). spec-deltanet-attention-qwen3next.md §1.7.
// Bindings: step uniform; part f32 as vec4f, per (token, head) row of RS floats (m_s at s, l_s at S + s, acc_s at
// MLW + s·D, MLW = 2S rounded up to 4: sdpa_split.wgsl); out [N, H·D] f32 as vec4f; dims (as sdpa_split).
// Dispatch: one workgroup of WG threads per (token, head), 2-D grid over N·H. The weights e^{m_s − M} go to
// workgroup memory (tree reductions for M and the denominator); then thread i sums dims 4·(i % (D/4)) .. +3 over
// the splits s ≡ i / (D/4) mod WG / (D/4) (four loads in flight), and the WG / (D/4) groups are summed. Defines: WG (≥ D/4), SMAX (≥ S). f32.
#include "common.wgsl"
#include "sdpa_tree.wgsl"

struct Dims { H: u32, KV: u32, D: u32, ctx: u32, window: u32, scale: f32, S: u32, RS: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> part: array<vec4f>;       // [N·H, RS / 4]
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;  // [N, H·D / 4]
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> ws: array<f32, SMAX>;
var<workgroup> red: array<f32, WG>;
var<workgroup> red4: array<vec4f, WG>;

fn partf(i: u32) -> f32 { return part[i / 4u][i % 4u]; }

@compute @workgroup_size(WG)
fn sdpa_combine(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let H = dims.H;
  let D = dims.D;
  let S = dims.S;
  let th = wg.x + wg.y * ng.x;
  if (th >= step.n * H) { return; }
  let row = th * dims.RS;
  let MLW = (2u * S + 3u) / 4u * 4u;
  var mloc = -3.0e38;
  for (var s = li; s < S; s += WG) { mloc = max(mloc, partf(row + s)); }
  red[li] = mloc;
  let M = wg_tree(li, true);
  var lloc = 0.0;
  for (var s = li; s < S; s += WG) {
    let w = exp(partf(row + s) - M);
    ws[s] = w;
    lloc += w * partf(row + S + s);
  }
  red[li] = lloc;
  let den = wg_tree(li, false);   // its barriers also publish ws
  let Q = D / 4u;
  let NG = WG / Q;
  let dq = li % Q;
  let sg = li / Q;
  var a = vec4f(0.0);
  if (sg < NG) {
    let ao = (row + MLW) / 4u + dq;
    var s = sg;
    for (; s + 3u * NG < S; s += 4u * NG) {   // four loads in flight
      let p0 = part[ao + s * Q];
      let p1 = part[ao + (s + NG) * Q];
      let p2 = part[ao + (s + 2u * NG) * Q];
      let p3 = part[ao + (s + 3u * NG) * Q];
      a += ws[s] * p0 + ws[s + NG] * p1 + ws[s + 2u * NG] * p2 + ws[s + 3u * NG] * p3;
    }
    for (; s < S; s += NG) { a += ws[s] * part[ao + s * Q]; }
  }
  red4[li] = a;
  workgroupBarrier();
  if (li < Q) {
    var o = vec4f(0.0);
    for (var x = 0u; x < NG; x++) { o += red4[x * Q + li]; }
    out[th * Q + li] = o / den;
  }
}
