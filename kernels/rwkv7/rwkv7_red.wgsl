// rwkv7_red.wgsl: the workgroup sums RWKV7's decode kernels share (ln_shift, rwkv7_proj_ln, wkv7_lora). The includer
// defines WG, SG_RED and SGS; its entry point passes sg, the subgroup_size builtin with SG_RED, else 1 (it then has
// no such builtin and declares `let sg = 1u;`).
#if SG_RED
var<workgroup> wred: array<vec2f, WG / SGS>;
#else
var<workgroup> wred: array<vec2f, WG>;
#endif

// Sum of v over the workgroup (every thread gets it; every thread must call it): subgroupAdd, then the subgroups'
// sums through workgroup memory (SG_RED), else a workgroup-memory tree.
fn wg_sum2(v: vec2f, li: u32, sg: u32) -> vec2f {
#if SG_RED
  let s = subgroupAdd(v);
  if (li % sg == 0u) { wred[li / sg] = s; }
  workgroupBarrier();
  var total = vec2f(0.0);
  for (var i = 0u; i < WG / sg; i++) { total += wred[i]; }
#else
  wred[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { wred[li] += wred[li + s]; }
    workgroupBarrier();
  }
  let total = wred[0];
#endif
  workgroupBarrier();
  return total;
}

fn wg_sum(v: f32, li: u32, sg: u32) -> f32 { return wg_sum2(vec2f(v, 0.0), li, sg).x; }
