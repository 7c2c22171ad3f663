// fill_random: W[i] = two bf16 (BF16) or one f32 (else) uniform values in [−SCALE, SCALE) from a hash of (i, seed):
// synthetic weights made on the GPU for `fla bench --synthetic` (no host memory, no upload).
// Bindings: W [n] u32; dims (n, seed, scale bits). Dispatch: one thread per u32, 256 per workgroup, 2-D.
@group(0) @binding(0) var<storage, read_write> W: array<u32>;
@group(0) @binding(1) var<uniform> dims: vec4u;   // n, seed, bitcast scale, bf16 (1) or f32 (0)

fn hash(x: u32) -> u32 {
  var h = x * 0x9e3779b9u;
  h ^= h >> 16u; h *= 0x85ebca6bu; h ^= h >> 13u; h *= 0xc2b2ae35u; h ^= h >> 16u;
  return h;
}

fn uni(i: u32) -> f32 { return (f32(hash(i ^ hash(dims.y)) >> 8u) / 16777216.0 * 2.0 - 1.0) * bitcast<f32>(dims.z); }

@compute @workgroup_size(256)
fn fill_random(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = g.x + g.y * ng.x * 256u;
  if (i >= dims.x) { return; }
  if (dims.w == 1u) {
    let lo = bitcast<u32>(uni(2u * i)) >> 16u;
    let hi = bitcast<u32>(uni(2u * i + 1u)) & 0xffff0000u;
    W[i] = lo | hi;
  } else {
    W[i] = bitcast<u32>(uni(i));
  }
}
