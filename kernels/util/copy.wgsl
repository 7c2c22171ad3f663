// copy: dst[i] = src[i] as vec4 — the bandwidth ceiling that `fla bench` reports fractions of.
// Bindings: src, dst [n] vec4<u32>; dims (n). Dispatch: 256 threads per workgroup, 2-D grid.
@group(0) @binding(0) var<storage, read> src: array<vec4u>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4u>;
@group(0) @binding(2) var<uniform> dims: vec4u;

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = g.x + g.y * ng.x * 256u;
  if (i < dims.x) { dst[i] = src[i]; }
}
