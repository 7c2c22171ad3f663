// fp8 / MoE decode probe (issue 19): GPU time per dispatch and the weight bandwidth it reaches for the decode kernels of
// Qwen3-Next-80B-A3B fp8 (synthetic weights of the published shapes), under each set of FLA_* settings given.
// Run: bun bench/fp8_probe.ts [--rows 1,8] [--env 'A=1 B=2' --env 'A=0'] [--shapes NAME,NAME] [--split] [--out FILE]. Each figure: 50
// back-to-back dispatches of the op's launches in one pass (the per-dispatch cost inside a pass included), mean per op
// call. --split: also every launch of the op alone, 50 back-to-back in one pass (µs/call) and each in a pass of its own
// with timestamps (kernel µs: the GPU time between the pass's begin and end, median; the difference to µs/call is the
// per-dispatch cost between dependent dispatches), with the GB/s of the launch's counted bytes. The case 'tiny' (a
// 64 × 64 fp8 GEMV) measures the fixed cost of a dispatch.
import { appendFileSync } from 'node:fs';
import { matmul } from '../kernels/matmul/matmul.ts';
import { matmulMulti } from '../kernels/matmul/matmul_gemv_multi.ts';
import { matmulFp8Gated, matmulFp8Multi } from '../kernels/matmul/matmul_fp8.ts';
import { expertWeights, moeExperts, sharedExpert } from '../kernels/moe/moe_experts.ts';
import { selCols } from '../kernels/moe/moe_topk.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import type { Weight } from '../src/backend/backend.ts';
import { Gpu, type Dispatch } from '../src/gpu/device.ts';

const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const args = (name: string) => process.argv.flatMap((a, i) => (a === `--${name}` ? [process.argv[i + 1]!] : []));
const ROWS = (args('rows')[0] ?? '1').split(',').map(Number);
const ENVS = args('env').length ? args('env') : [''];
const pick = args('shapes')[0] ?? '';
const REPS = Number(args('reps')[0] ?? 50);
const SPLIT = process.argv.includes('--split');
// --out FILE: every line also appended to FILE as it is printed (a run cut short keeps what it measured)
const OUTF = args('out')[0];
const say = (line: string) => { console.log(line); if (OUTF) appendFileSync(OUTF, line + '\n'); };
const d = 2048, E = 512, K = 10, I = 512;
let seed = 1;
const fp8 = (OUT: number, IN: number, rp?: number): Weight =>
  o.weight(`w${seed}`, { shape: [OUT, IN], dtype: 'fp8', synthetic: { seed: seed++, scale: 0.02 }, ...(rp ? { fp8Parts: rp } : {}) }, true);
const gn = o.weight('gn', { shape: [d], dtype: 'f32', synthetic: { seed: 99, scale: 1 } }, false);
const tiny = fp8(64, 64), inProj = fp8(12352, d), qgkv = fp8(9216, d), outProj = fp8(d, 4096), oProj = fp8(d, 4096);
const experts = expertWeights(o, 'ex', { shape: [E, 2 * I, d], dtype: 'fp8', synthetic: { seed: 7, scale: 0.02 }, fp8Parts: I },
  { shape: [E, d, I], dtype: 'fp8', synthetic: { seed: 8, scale: 0.02 }, fp8Parts: d }, E, I, d);
const shared = sharedExpert(o, 'sh', { shape: [2 * I, d], dtype: 'fp8', synthetic: { seed: 9, scale: 0.02 }, fp8Parts: I }, { shape: [d, I], dtype: 'fp8', synthetic: { seed: 10, scale: 0.02 } }, I, d);
await o.settle();

/** µs per repetition of ds, REPS back-to-back in one pass (the second and third of three runs). */
async function inPass(ds: Dispatch[]): Promise<number> {
  const run = async () => { const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, Array.from({ length: REPS }, () => ds).flat()); gpu.submit(enc); await gpu.device.queue.onSubmittedWorkDone(); };
  await run();
  const t0 = performance.now();
  await run(); await run();
  return (performance.now() - t0) * 1000 / (2 * REPS);
}

/** Median GPU µs of one dispatch alone in a pass with begin/end timestamps (NaN without timestamp queries). */
async function kernelUs(d: Dispatch): Promise<number> {
  if (!gpu.timestamps) return NaN;
  const n = REPS, qs = gpu.device.createQuerySet({ type: 'timestamp', count: 2 * n });
  const res = gpu.buffer(16 * n, 'probe-ts', GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
  const enc = gpu.device.createCommandEncoder();
  for (let i = 0; i < n; i++) {
    const pass = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(...d.workgroups);
    pass.end();
  }
  enc.resolveQuerySet(qs, 0, 2 * n, res, 0);
  const t = new BigUint64Array(await gpu.read(res, 0, 16 * n, enc));
  const ns = Array.from({ length: n }, (_, i) => Number(t[2 * i + 1]! - t[2 * i]!)).sort((a, b) => a - b);
  qs.destroy();
  res.destroy();
  return ns[n >> 1]! / 1000;
}

type Case = { name: string; bytes: number; run: () => Promise<void> };
const router = o.weight('router', { shape: [E + 1, d], dtype: 'bf16', synthetic: { seed: 98, scale: 0.02 } }, true);
await o.settle();
const cases: Case[] = [
  { name: 'tiny 64x64', bytes: 64 * 64, run: () => matmul(o, o.act('t', 64), tiny, null, 'none', o.act('ty', 64)) },
  { name: 'router 513x2048 bf16 +norm', bytes: 2 * (E + 1) * d, run: () => matmulMulti(o, o.act('x', d), { w: gn, eps: 1e-6, h: o.act('h', d) }, [{ w: router, y: o.act('logits', E + 1) }]) },
  { name: 'in_proj 12352x2048 +norm', bytes: 12352 * d, run: () => matmulFp8Multi(o, o.act('x', d), { w: gn, eps: 1e-6, h: o.act('h', d) }, [{ w: inProj, y: o.act('y1', 12352) }]) },
  { name: 'q|g|k|v 9216x2048 +norm', bytes: 9216 * d, run: () => matmulFp8Multi(o, o.act('x', d), { w: gn, eps: 1e-6, h: o.act('h', d) }, [{ w: qgkv, y: o.act('y2', 9216) }]) },
  { name: 'out_proj 2048x4096 +=', bytes: d * 4096, run: () => matmul(o, o.act('a', 4096), outProj, null, 'none', o.act('x', d), true) },
  { name: 'o_proj gated 2048x4096 +=', bytes: d * 4096, run: () => matmulFp8Gated(o, o.act('a', 4096), o.act('g', 4096), oProj, null, 'none', o.act('x', d), true) },
  {
    name: 'moe top-10/512 + shared (gu + down)', bytes: 11 * 3 * I * d,
    run: () => moeExperts(o, o.act('x', d), o.act('sel', selCols(K, true)), experts, o.act('x', d), K, shared, { w: gn, eps: 1e-6, h: o.act('h', d) }, { logits: o.act('logits', E + 1), normTopk: true }),
  },
].filter(c => pick.split(',').some(q => c.name.includes(q)));

say(`device: ${gpu.summary.name}`);
say('| case | rows | env | dispatches | µs/call | GB/s (weights) |');
say('|---|---|---|---|---|---|');
const base = { ...process.env };
for (const c of cases) {
  for (const R of ROWS) {
    for (const env of ENVS) {
      for (const k of Object.keys(process.env)) if (k.startsWith('FLA_') && !(k in base)) delete process.env[k];
      for (const kv of env.split(' ').filter(Boolean)) { const [k, v] = kv.split('='); process.env[k!] = v!; }
      o.allocState([], 1);
      o.beginStep({ ids: new Int32Array(R), cursors: Array.from({ length: R }, (_, i) => ({ slot: 0, start: i, len: 1 })), keep: new Int32Array(0) });
      await c.run();
      const ds = o.dispatchesForBench();
      const us = await inPass(ds);
      say(`| ${c.name} | ${R} | ${env || 'default'} | ${ds.length} | ${us.toFixed(2)} | ${(c.bytes / (us * 1e3)).toFixed(0)} |`);
      if (SPLIT) {
        for (const dd of ds) {
          const u1 = await inPass([dd]), k = await kernelUs(dd), b = dd.cost?.bytes ?? 0;
          const wg = dd.workgroups.join('x');
          say(`| ↳ ${dd.label} [${wg}] | ${R} | ${env || 'default'} | 1 | ${u1.toFixed(2)} (kernel ${k.toFixed(2)}) | ${(b / (u1 * 1e3)).toFixed(0)} (kernel ${(b / (k * 1e3)).toFixed(0)}) |`);
        }
      }
    }
  }
}
process.exit(0);
