// Run by test/regular/unit/guard_buffers.test.ts (and GPU.sh) in a child process, since the WebGPU instance takes
// its toggles once per process. One kernel reads src one word past its end (GUARD_PROBE_PAST words; 0: its last
// word, in bounds) and writes dst as far past its end, ORs the 64 words after src's end together, and reads a
// workgroup array as far past its end. It prints what the reads returned and whether the readback's canary check
// (FLA_GUARD_BUFFERS=1) threw.
import { Gpu } from '../../src/gpu/device.ts';
import { dispatch } from '../../src/gpu/launch.ts';

const PAST = Number(process.env.GUARD_PROBE_PAST ?? '0');
const src = `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> dims: vec4<u32>;   // past, words of src, words of dst
var<workgroup> wa: array<u32, 4>;
var<workgroup> wb: array<u32, 4>;
@compute @workgroup_size(1)
fn probe() {
  for (var i = 0u; i < 4u; i++) { wa[i] = 1u + i; wb[i] = 11u + i; }
  workgroupBarrier();
  dst[2] = wa[3u + dims.x];                 // robustness clamps the index to wa[3] = 4; without it, what lies past wa
  dst[0] = src[dims.y - 1u + dims.x];
  var any = 0u;
  for (var k = 1u; k <= 64u; k++) { any |= src[dims.y - 1u + k]; }   // deliberately out of bounds
  dst[1] = any;
  dst[dims.z - 1u + dims.x] = 0x600du;
}`;
const gpu = await Gpu.create();
const a = gpu.upload(new Uint32Array(16).map((_, i) => 100 + i), 'probe src');
const b = gpu.buffer(64, 'probe dst');
const d = await dispatch(gpu, { label: 'probe', source: src }, { src: { buffer: a }, dst: { buffer: b }, dims: { buffer: gpu.uniform(new Uint32Array([PAST, 16, 16, 0])) } }, [1, 1, 1]);
const enc = gpu.device.createCommandEncoder();
gpu.encode(enc, [d]);
let read: number | null = null, past64: number | null = null, wg: number | null = null, error: string | null = null;
try { [read, past64, wg] = [...new Uint32Array(await gpu.read(b, 0, 12, enc))]; } catch (e) { error = (e as Error).message; }
console.log(JSON.stringify({ binding: gpu.summary.binding, adapter: gpu.summary.name, guarded: gpu.guards !== null, robust: gpu.summary.robust, type: gpu.summary.type, past: PAST, read, past64, wg, error }));
gpu.destroy();
