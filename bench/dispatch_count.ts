// Dispatches per greedy batch-1 decode step of each synthetic shape (issue 15 target: ≤ 6 per layer + 6), measured
// on whatever adapter is present by recording models of 1 and 2 layers (vocabulary cut to 1024: the count does not
// depend on it). Run: bun bench/dispatch_count.ts; FLA_KERNEL_MATMUL_MULTI=split shows the count before fusion.
import { GpuBackend } from '../src/backend/gpu.ts';
import { SHAPES, syntheticModel } from '../src/bench/synthetic.ts';
import { Gpu } from '../src/gpu/device.ts';
import { Engine } from '../src/runtime/engine.ts';

const gpu = await Gpu.create();
console.log('| shape | layers | per layer | fixed | per token |');
console.log('|---|---|---|---|---|');
for (const name of ['llama-1b', 'rwkv7-1.5b', 'gated_deltanet-1.3b', 'gla-1.3b']) {
  const counts: number[] = [];
  for (const L of [1, 2]) {
    const o = new GpuBackend(gpu);
    SHAPES[`${name}@${L}`] = { ...SHAPES[name], num_hidden_layers: L, vocab_size: 1024 };
    const m = syntheticModel(`${name}@${L}`, o);
    await o.settle();
    const e = new Engine(m, 1, 64, 64);
    const slot = e.acquire();
    const [r] = await e.runArgmax([{ slot, tokens: [1, 2] }]);
    await e.runArgmax([{ slot, tokens: [r!.id] }]);
    counts.push(e.recordedDispatches(1, 1, 1, 'argmax')!);
  }
  const per = counts[1]! - counts[0]!, fixed = counts[0]! - per, layers = SHAPES[name]!.num_hidden_layers as number;
  console.log(`| ${name} | ${layers} | ${per} | ${fixed} | ${fixed + layers * per} |`);
}
process.exit(0);
