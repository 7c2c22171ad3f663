// Prefill benchmark of the delta-rule families (issue 5): tokens/s of a chunked vs a token-by-token (recurrent
// kernel) prefill of one long prompt, and of single-token decode, on a Gated DeltaNet with synthetic weights.
//   bun scripts/bench_delta.ts [tokens=4096] [layers=4] [hidden=2048] [heads=6] [head_dim=256] [expand_v=2]
import { GpuBackend } from '../src/backend/gpu.ts';
import type { HostWeight } from '../src/backend/backend.ts';
import { Gpu } from '../src/gpu/device.ts';
import type { Model } from '../src/runtime/model.ts';
import type { WeightReader } from '../src/load/weights.ts';
import arch from '../src/models/gated_deltanet.ts';
import { Engine } from '../src/runtime/engine.ts';

const [T = 4096, L = 4, d = 2048, H = 6, DK = 256, EV = 2] = process.argv.slice(2).map(Number);
const cfg = arch.parseConfig({ model_type: 'gated_deltanet', hidden_size: d, num_hidden_layers: L, num_heads: H, head_dim: DK, expand_v: EV, vocab_size: 32000 }, 'bench');
let seed = 12345;
const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
const f32 = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
function bf16(n: number, s: number): Uint16Array {
  const f = f32(n, -s, s), u = new Uint32Array(f.buffer), out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = u[i]! >>> 16;
  return out;
}
const reader = {
  has: () => true, ignore: () => {},
  read(name: string, shape: number[]): HostWeight {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 2 && shape[0]! > 1 && !name.includes('conv')) return { shape, dtype: 'bf16', bits16: bf16(n, 1 / Math.sqrt(shape[1]!)) };
    if (name.includes('conv')) return { shape, dtype: 'f32', f32: f32(n, -0.5, 0.5) };
    return { shape, dtype: 'f32', f32: f32(n, 0.8, 1.2) };   // norm weights
  },
  stack(names: string[], width: number): HostWeight {   // A_log | dt_bias
    return { shape: [names.length, width], dtype: 'f32', f32: Float32Array.from([...f32(width, 0, 2.7), ...f32(width, -5, -2)]) };
  },
} as unknown as WeightReader;

const gpu = await Gpu.create();
const backend = new GpuBackend(gpu);
const weights = arch.load(cfg, reader, backend);
const model = { dir: 'synthetic', arch, cfg, config: {}, eosIds: [], weights, backend } as unknown as Model;
const e = new Engine(model, 2, T);
const prompt = Array.from({ length: T }, () => Math.floor(rnd() * 32000));
console.log(`${gpu.summary.name} (${gpu.summary.backend}); gated_deltanet synthetic: hidden ${d}, ${L} layers, ${H} heads, d_k ${DK}, d_v ${DK * EV}; prompt ${T} tokens`);

async function prefill(kernel: string): Promise<number> {
  process.env.FLA_KERNEL_DELTA_RULE = kernel;
  const slot = e.acquire();
  const t0 = performance.now();
  await e.run([{ slot, tokens: prompt }]);
  const ms = performance.now() - t0;
  e.release(slot);
  return ms;
}
const results: Record<string, number[]> = { chunk: [], recurrent: [] };
for (const k of ['chunk', 'recurrent']) await prefill(k);   // compile pipelines, allocate
for (let rep = 0; rep < 3; rep++) for (const k of ['chunk', 'recurrent']) results[k]!.push(await prefill(k));
for (const [k, ms] of Object.entries(results)) {
  const best = Math.min(...ms);
  console.log(`prefill ${k.padEnd(9)}: best ${best.toFixed(1)} ms = ${(T / best * 1000).toFixed(0)} tok/s  (runs ${ms.map(m => m.toFixed(0)).join(', ')} ms)`);
}
delete process.env.FLA_KERNEL_DELTA_RULE;
const slot = e.acquire();
await e.run([{ slot, tokens: prompt.slice(0, 16) }]);
const t0 = performance.now();
for (let i = 0; i < 64; i++) await e.run([{ slot, tokens: [i] }]);
const ms = performance.now() - t0;
console.log(`decode: ${(64 / ms * 1000).toFixed(1)} tok/s (64 steps after a 16-token prompt, batch 1)`);

// the delta-rule op alone on one T-token sequence (per layer), both kernels
{
  const { deltaRule } = await import('../kernels/delta/delta_rule.ts');
  const c = cfg, KD = c.H * c.DK, VD = c.HV * c.DV;
  const o = new GpuBackend(gpu);
  o.allocState([{ key: 'S', cols: c.HV * c.DK * c.DV }], 1);
  o.beginStep({ ids: new Int32Array(T), cursors: [{ slot: 0, start: 0, len: T }], keep: new Int32Array(0) });
  const t = (n: string, cols: number) => { const x = o.act(n, cols); o.write(x, f32(o.capacity(x) * cols, -1, 1)); return x; };
  const q = t('q', KD), k = t('k', KD), v = t('v', VD), a = t('a', c.HV), b = t('b', c.HV), y = o.act('y', VD);
  const gp = o.weight('gp', { shape: [2, c.HV], dtype: 'f32', f32: Float32Array.from([...f32(c.HV, 0, 2.7), ...f32(c.HV, -5, -2)]) }, false);
  const d = { H: c.H, HV: c.HV, DK: c.DK, DV: c.DV, qkNorm: 'l2' as const, qkAct: 'none' as const, vSilu: false, negEig: false };
  for (const [kernel, bv] of [['chunk', '4'], ['chunk', '8'], ['chunk', '16'], ['chunk', '32'], ['chunk', ''], ['recurrent', '']]) {
    process.env.FLA_KERNEL_DELTA_RULE = kernel;
    process.env.FLA_DELTA_CHUNK_BV = bv;
    const times: number[] = [];
    for (let rep = 0; rep < 4; rep++) {
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await deltaRule(o, { q, k, v, a, gp, b, state: o.state('S'), out: y, d });
      await o.read(a);   // a small tensor: waits for the step without a large readback
      times.push((performance.now() - t0) / 5);
    }
    const best = Math.min(...times.slice(1));
    console.log(`delta_rule op alone, ${kernel.padEnd(9)}${bv ? ` BV=${bv}` : ' default'}: ${best.toFixed(2)} ms per layer for ${T} tokens = ${(T / best * 1000).toFixed(0)} tok/s`);
  }
  delete process.env.FLA_DELTA_CHUNK_BV;
  // the chunked path's dispatches cumulatively (prep, +kkt, +solve, +state)
  const { buildChunk, CHUNK } = await import('../kernels/delta/delta_rule.ts');
  const sc = {
    qk: o.view(o.act('delta_qk', KD, { planes: 2 })), gates: o.view(o.act('delta_gates', c.HV, { planes: 3 })),
    ab: o.view(o.act('delta_ab', c.HV * CHUNK, { planes: 3 })),
  };
  const disp = await buildChunk(gpu, o.step, { q: o.view(q), k: o.view(k), v: o.view(v), a: o.view(a), b: o.view(b), gp: o.weightView(gp), state: o.view(o.state('S')), o: o.view(y), d }, sc);
  const names = ['prep', 'kkt', 'solve', 'state'];
  for (let m = 1; m <= 4; m++) {
    const times: number[] = [];
    for (let rep = 0; rep < 4; rep++) {
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) for (const x of disp.slice(0, m)) o.push(x);
      await o.read(a);   // a small tensor: waits for the step without a large readback
      times.push((performance.now() - t0) / 5);
    }
    console.log(`  chunk dispatches up to ${names[m - 1]}: ${Math.min(...times.slice(1)).toFixed(2)} ms`);
  }
}
