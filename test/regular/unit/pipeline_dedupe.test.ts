// Gpu.pipeline: requests for one variant made while it compiles share one pipeline object. Bind groups are cached by
// the variant's key and made with its pipeline's 'auto' layout; a second object compiled by a concurrent request was
// dispatched with the first one's bind group, which Dawn rejects (seen on the H200 as "created with a default
// layout, and is not compatible with the [BindGroup]" in most model tests).
import { expect, test } from 'bun:test';
import { gpu, HAS_GPU } from '../../helpers/gpu.ts';

const source = `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn dedupe_probe(@builtin(global_invocation_id) g: vec3u) { if (g.x < arrayLength(&out)) { out[g.x] = g.x + VALUE; } }
`;

test.skipIf(!HAS_GPU)('concurrent requests for one variant give the same pipeline; other variants their own', async () => {
  const spec = (v: number) => ({ label: 'dedupe_probe', source, defines: { VALUE: v } });
  const [a, b, c] = await Promise.all([gpu!.pipeline(spec(1)), gpu!.pipeline(spec(1)), gpu!.pipeline(spec(2))]);
  expect(a).toBe(b);
  expect(c).not.toBe(a);
  expect(await gpu!.pipeline(spec(1))).toBe(a);   // and later ones the cached one
});
