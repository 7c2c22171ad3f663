// fill_fp8: W[i] = four random F8_E4M3 bytes from a hash of (i, seed), exponent field ≤ 7 (|value| ≤ 1.875, no NaN):
// synthetic fp8 weights made on the GPU for `fla bench --synthetic … --dtype fp8` (the block scales set the range).
// Bindings: W [n] u32; dims (n, seed). Dispatch: one thread per u32, 256 per workgroup, 2-D.
@group(0) @binding(0) var<storage, read_write> W: array<u32>;
@group(0) @binding(1) var<uniform> dims: vec4u;   // n, seed

fn hash(x: u32) -> u32 {
  var h = x * 0x9e3779b9u;
  h ^= h >> 16u; h *= 0x85ebca6bu; h ^= h >> 13u; h *= 0xc2b2ae35u; h ^= h >> 16u;
  return h;
}

@compute @workgroup_size(256)
fn fill_fp8(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = g.x + g.y * ng.x * 256u;
  if (i >= dims.x) { return; }
  W[i] = hash(i ^ hash(dims.y)) & 0xbfbfbfbfu;   // bit 6 of each byte clear: exponent 0..7
}
