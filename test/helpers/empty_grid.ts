// Run by test/regular/kernels/empty_grid.test.ts in a process of its own: encodes an empty grid between two copies,
// checks the copies ran, and prints only "done" (or the failure) on stdout.
import copySrc from '../../kernels/util/copy.wgsl' with { type: 'text' };
import { Gpu } from '../../src/gpu/device.ts';
import { dispatch } from '../../src/gpu/launch.ts';

const g = await Gpu.create(), n = 64;
const src = g.buffer(16 * n, 'src'), dst = g.buffer(16 * n, 'dst');
g.device.queue.writeBuffer(src, 0, new Uint32Array(4 * n).map((_, i) => i + 1));
const entries = { src: { buffer: src }, dst: { buffer: dst }, dims: { buffer: g.uniform(new Uint32Array([n, 0, 0, 0])) } };
const spec = { label: 'copy', source: copySrc };
const ds = [await dispatch(g, spec, entries, [0, 1, 1]), await dispatch(g, spec, entries, [1, 1, 1]), await dispatch(g, spec, entries, [1, 0, 1])];
g.device.pushErrorScope('validation');
const enc = g.device.createCommandEncoder();
g.encode(enc, ds);
g.submit(enc);
const err = await g.device.popErrorScope();
const got = new Uint32Array(await g.read(dst, 0, 16 * n));
const ok = !err && got.every((v, i) => v === i + 1);
console.log(ok ? 'done' : `failed: ${err?.message ?? 'the copy after the empty grid did not run'}`);
process.exit(0);
