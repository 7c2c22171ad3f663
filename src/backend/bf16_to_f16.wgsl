// bf16_to_f16: W[i] (two bf16) → two f16, in place (synthetic weights of fla bench on devices whose GEMM reads f16;
// real checkpoints are converted on the host, where out-of-range values are counted).
// Bindings: W [n] u32; dims (n). Dispatch: one thread per u32, 256 per workgroup, 2-D.
@group(0) @binding(0) var<storage, read_write> W: array<u32>;
@group(0) @binding(1) var<uniform> dims: vec4u;

@compute @workgroup_size(256)
fn bf16_to_f16(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = g.x + g.y * ng.x * 256u;
  if (i >= dims.x) { return; }
  let u = W[i];
  W[i] = pack2x16float(vec2f(bitcast<f32>(u << 16u), bitcast<f32>(u & 0xffff0000u)));
}
