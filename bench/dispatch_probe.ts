// Dispatch-cost probe (issue 15): GPU time of one dispatch that does almost nothing, back to back in one compute pass,
// by grid size and by whether consecutive dispatches depend on each other. Each dispatch's first lane adds 1 to a
// word of a storage buffer: "chain" — every dispatch the same buffer (a write after write: Dawn puts a barrier between
// them); "independent" — each dispatch of a run of 8 its own buffer (no hazard between neighbours); "passes" — chain,
// but each dispatch in a pass of its own. µs a dispatch = wall time of a submit of N dispatches, minus that of N = 1,
// over N − 1, the fastest of 5 submits.
//   bun bench/dispatch_probe.ts [--n 400] [--grids 1,132,1024,8192]
import { Gpu } from '../src/gpu/device.ts';

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : dflt; };
const N = Number(arg('n', '400')), GRIDS = arg('grids', '1,132,1024,8192').split(',').map(Number);
const gpu = await Gpu.create();
const dev = gpu.device;
console.log(`${gpu.summary.name} (${gpu.summary.binding} ${gpu.summary.bindingVersion})`);

const module = dev.createShaderModule({ code: `
@group(0) @binding(0) var<storage, read_write> buf: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x == 0u && g.y == 0u) { buf[0] = buf[0] + 1.0; }
}` });
const pipeline = dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
const bufs = Array.from({ length: 8 }, () => dev.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }));
const groups = bufs.map(b => dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: b } }] }));

type Mode = 'chain' | 'independent' | 'passes';
async function wall(mode: Mode, grid: number, n: number): Promise<number> {
  const enc = dev.createCommandEncoder();
  const [gx, gy] = grid <= 65535 ? [grid, 1] : [65535, Math.ceil(grid / 65535)];
  let pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  for (let i = 0; i < n; i++) {
    if (mode === 'passes' && i > 0) { pass.end(); pass = enc.beginComputePass(); pass.setPipeline(pipeline); }
    pass.setBindGroup(0, groups[mode === 'independent' ? i % 8 : 0]!);
    pass.dispatchWorkgroups(gx, gy);
  }
  pass.end();
  const t0 = performance.now();
  dev.queue.submit([enc.finish()]);
  await dev.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

async function perDispatch(mode: Mode, grid: number): Promise<number> {
  let best1 = Infinity, bestN = Infinity;
  for (let r = 0; r < 5; r++) {
    best1 = Math.min(best1, await wall(mode, grid, 1));
    bestN = Math.min(bestN, await wall(mode, grid, N));
  }
  return (bestN - best1) / (N - 1) * 1000;
}

await wall('chain', 1024, N);   // warm-up
console.log(`| grid (workgroups of 64) | chain µs | independent µs | own pass µs |`);
console.log(`|---|---|---|---|`);
for (const g of GRIDS) {
  const r = [await perDispatch('chain', g), await perDispatch('independent', g), await perDispatch('passes', g)];
  console.log(`| ${g} | ${r.map(x => x.toFixed(2)).join(' | ')} |`);
}
gpu.destroy();
process.exit(0);
