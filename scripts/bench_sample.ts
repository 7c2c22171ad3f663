// Per-step cost of choosing tokens (issue 15, sampling on the GPU): wall time of one step that writes nothing but the
// choice — the argmax op, the sample op (several settings) with its 8-byte-per-row readback — against reading the
// logits back and sampling on the host (src/runtime/sample.ts), for vocabularies of 32 000 and 151 936 and 1 / 8 rows.
// Per-kernel GPU time comes from the backend's profile (timestamp queries) where the adapter has them.
//   bun scripts/bench_sample.ts [steps=50]
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';
import { argmax } from '../kernels/sample/argmax.ts';
import { encodeRow, paramCols, sample, type SampleRow } from '../kernels/sample/sample.ts';
import { Sampler } from '../src/runtime/sample.ts';

const [N = 50] = process.argv.slice(2).map(Number);
const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
let seed = 12345;
const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };

const SETTINGS: [string, Omit<SampleRow, 'seed' | 'step'>][] = [
  ['defaults (T 0.8, k 40, p 0.95, min-p 0.05)', { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1 }],
  ['k 0, p 0.9, min-p 0 (wide nucleus)', { temperature: 1, topK: 0, topP: 0.9, minP: 0, repetitionPenalty: 1 }],
  ['plain softmax (T 1, all filters off)', { temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 }],
  ['defaults + penalty 1.1 over 512 ids', { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1.1, history: Array.from({ length: 512 }, (_, i) => i * 7) }],
];

function step(K: number): void {
  o.beginStep({ ids: new Int32Array(K), cursors: Array.from({ length: K }, (_, s) => ({ slot: 0, start: s, len: 1, pos: 0 })), keep: Int32Array.from({ length: K }, (_, i) => i) });
}

async function time(what: string, body: () => Promise<void>): Promise<void> {
  await body();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await body();
  console.log(`  ${what.padEnd(48)} ${((performance.now() - t0) / N * 1000).toFixed(0).padStart(7)} µs/step`);
}

o.allocState([], 8);
for (const V of [32000, 151936]) {
  for (const K of [1, 8]) {
    console.log(`V=${V} rows=${K}`);
    const logits = Float32Array.from({ length: K * V }, () => (rnd() - 0.5) * 16);
    step(K);
    const lt = o.act('bench_logits', V, { rows: 'k' });
    o.write(lt, logits);
    await o.endStep(lt);
    await time('argmax op', async () => {
      step(K);
      const out = o.act('bench_out', 2, { rows: 'k' }), ids = o.act('bench_ids', 1, { rows: 'k' });
      await argmax(o, lt, out, ids);
      await o.endStep(out);
    });
    for (const [name, s] of SETTINGS) {
      const P = paramCols(s.history?.length ?? 0), params = new Float32Array(K * P);
      let t = 0;
      await time(`sample op: ${name}`, async () => {
        for (let r = 0; r < K; r++) encodeRow(params, r * P, P, { ...s, seed: 1, step: t++ });
        step(K);
        const pt = o.act('bench_params', P, { rows: 'k' }), out = o.act('bench_out', 2, { rows: 'k' }), ids = o.act('bench_ids', 1, { rows: 'k' });
        o.write(pt, params);
        await sample(o, lt, pt, out, ids);
        await o.endStep(out);
      });
      const sm = new Sampler({ ...s, seed: 1 });
      await time(`logits back + host Sampler: ${name}`, async () => {
        step(K);
        const data = await o.endStep(lt);
        for (let r = 0; r < K; r++) sm.sample(data.subarray(r * V, (r + 1) * V), s.history ?? []);
      });
    }
  }
}
o.destroy();
