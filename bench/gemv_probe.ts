// GEMV probe (issue 15): GPU time per matmul dispatch and the weight bandwidth it reaches, for decode shapes and
// row counts, per forced matmul variant. Run: bun bench/gemv_probe.ts [--rows 1,8,16]. Each figure: 50 back-to-back
// dispatches in one pass (so it includes the per-dispatch cost inside a pass), mean per dispatch.
import { matmul } from '../kernels/matmul/matmul.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';

const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const SHAPES: [number, number, string][] = [
  [2048, 2048, 'llama-1b q/o'], [512, 2048, 'llama-1b k/v'], [8192, 2048, 'llama-1b gate/up'], [2048, 8192, 'llama-1b down'],
  [128256, 2048, 'llama-1b lm_head'], [64, 2048, 'rwkv lora down'], [2048, 64, 'rwkv lora up'], [16384, 8192, '268 MB'], [1, 8, 'empty-ish'],
];
const ri = process.argv.indexOf('--rows');
const ROWS = ri > 0 ? process.argv[ri + 1]!.split(',').map(Number) : [1, 8, 16];
const KERNELS = ['gemv', 'gemv_vec', 'gemv_vec_wg'];
const REPS = 50;
console.log(`device: ${gpu.summary.name} (subgroup ${gpu.summary.subgroupMinSize}-${gpu.summary.subgroupMaxSize})`);
console.log('| shape | OUT×IN | rows | kernel | µs/dispatch | GB/s (weights) |');
console.log('|---|---|---|---|---|---|');
for (const [OUT, IN, what] of SHAPES) {
  const w = o.weight(`w${OUT}x${IN}`, { shape: [OUT, IN], dtype: 'bf16', synthetic: { seed: 3, scale: 0.01 } }, true);
  await o.settle();
  for (const R of ROWS) {
    for (const k of KERNELS) {
      process.env.FLA_KERNEL_MATMUL = k;
      o.allocState([], 1);
      o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });
      const x = o.act('px', IN), y = o.act('py', OUT);
      await matmul(o, x, w, null, 'none', y);
      const ds = o.dispatchesForBench();
      const run = async () => { const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, Array.from({ length: REPS }, () => ds).flat()); gpu.submit(enc); await gpu.device.queue.onSubmittedWorkDone(); };
      await run();
      const t0 = performance.now();
      await run(); await run();
      const us = (performance.now() - t0) * 1000 / (2 * REPS * ds.length);
      console.log(`| ${what} | ${OUT}×${IN} | ${R} | ${k} | ${us.toFixed(2)} | ${(2 * OUT * IN / (us * 1e3)).toFixed(0)} |`);
    }
  }
}
process.exit(0);
