// Shared by sdpa.wgsl and sdpa_combine.wgsl: a workgroup tree reduction. The includer declares
// `var<workgroup> red: array<f32, WG>` (WG a power of two).

// max (is_max) or sum of red[0 … WG), which each invocation i wrote at red[i] before the call, returned to every
// invocation; red is free again on return (barriers before and after)
fn wg_tree(i: u32, is_max: bool) -> f32 {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (i < s) { if (is_max) { red[i] = max(red[i], red[i + s]); } else { red[i] += red[i + s]; } }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
