// GEMV probe (issue 15): GPU time per decode-GEMV dispatch and the weight bandwidth it reaches, for every decode GEMV
// shape of llama-1b, rwkv7-1.5b and gated_deltanet-1.3b with its epilogue (accumulate, relu², the RMSNorm prologue,
// q|k|v parts, the SwiGLU pair), per batch rows, in one process. Each figure: a pass of ≥ 48 back-to-back dispatches
// that rotate over enough copies of the weights (≥ 192 MB) that they stream from HBM, not from the 50 MB L2 (as a
// model's step does); the fastest of 3 passes after a warm-up, per dispatch (so it includes the per-dispatch cost
// inside a pass).
//
//   bun bench/gemv_probe.ts [--rows 1,8] [--shapes all|NAME,...] [--cols d,1,2] [--lanes d,32] [--unroll d,4] [--wg d,256]
//     one line per combination of the knobs (FLA_GEMV_COLS / _LANES / _UNROLL / _WG; 'd': the default) and the
//     (when any is given) after the previous geometry (FLA_GEMV_TUNED=0) and the tuned default, interleaved --ab N
//     times (default 1); --split: also matmul_multi's unfused path for the fused shapes, and q|k|v with FLA_GEMV_PART_RT=1
//   bun bench/gemv_probe.ts --sweep [--budget 60] [--json out.jsonl]
//     per (shape, rows): the previous and the tuned default, then columns × unroll × lanes at 256 threads, then the
//     best columns × unroll at 128 and 512 threads over lanes; every measurement as a JSON line, the best per shape
//     in a table at the end. --budget stops starting new shapes after that many seconds. --rotate MB: weight bytes a
//     pass rotates over (default 192).
// NAME: shapes whose label contains it.
import { appendFileSync, writeFileSync } from 'node:fs';
import { matmul } from '../kernels/matmul/matmul.ts';
import type { Act } from '../kernels/matmul/matmul.ref.ts';
import { matmulMulti } from '../kernels/matmul/matmul_gemv_multi.ts';
import { plan } from '../kernels/matmul/matmul_gemv_vec.ts';
import type { Weight } from '../src/backend/backend.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';

const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : dflt; };
const t00 = performance.now();

// 'mm': one matmul (act, accumulate); 'qkv': 3 parts behind the norm; 'swiglu': gate|up behind the norm; 'norm1': one
// part behind the norm (the heads of llama and gated_deltanet, gated_deltanet's stacked q|k|v|z|a|b)
type Kind = 'mm' | 'qkv' | 'swiglu' | 'norm1';
interface Shape { name: string; kind: Kind; IN: number; parts: number[]; act?: Act; acc?: boolean }
const ALL: Shape[] = [
  { name: 'llama o / rwkv o', kind: 'mm', IN: 2048, parts: [2048], acc: true },
  { name: 'llama q|k|v', kind: 'qkv', IN: 2048, parts: [2048, 512, 512] },
  { name: 'llama gate|up', kind: 'swiglu', IN: 2048, parts: [8192, 8192] },
  { name: 'llama down / rwkv value', kind: 'mm', IN: 8192, parts: [2048], acc: true },
  { name: 'llama lm_head', kind: 'norm1', IN: 2048, parts: [128256] },
  { name: 'rwkv key', kind: 'mm', IN: 2048, parts: [8192], act: 'relu2' },
  { name: 'rwkv lm_head', kind: 'mm', IN: 2048, parts: [65536] },
  { name: 'gdn proj', kind: 'norm1', IN: 2048, parts: [12320] },
  { name: 'gdn o', kind: 'mm', IN: 4096, parts: [2048], acc: true },
  { name: 'gdn gate|up', kind: 'swiglu', IN: 2048, parts: [5632, 5632] },
  { name: 'gdn down', kind: 'mm', IN: 5632, parts: [2048], acc: true },
  { name: 'gdn lm_head', kind: 'norm1', IN: 2048, parts: [32000] },
];
const pick = arg('shapes', 'all');
const SHAPES = pick === 'all' ? ALL : ALL.filter(s => pick.split(',').some(p => s.name.includes(p)));
const ROWS = arg('rows', '1,8').split(',').map(Number);
const jsonOut = arg('json', '');
if (jsonOut) writeFileSync(jsonOut, '');
const KNOB = { cols: 'FLA_GEMV_COLS', lanes: 'FLA_GEMV_LANES', unroll: 'FLA_GEMV_UNROLL', wg: 'FLA_GEMV_WG', tuned: 'FLA_GEMV_TUNED', multi: 'FLA_KERNEL_MATMUL_MULTI', partrt: 'FLA_GEMV_PART_RT' } as const;
type Cfg = Partial<Record<keyof typeof KNOB, string>>;
const ROTATE_BYTES = Number(arg('rotate', '192')) * 1e6, MIN_DISPATCHES = 48;

console.log(`device: ${gpu.summary.name} (subgroup ${gpu.summary.subgroupMinSize}-${gpu.summary.subgroupMaxSize}, ${gpu.summary.type})`);

interface Loaded { s: Shape; copies: Weight[][]; gn: Weight; total: number }
function load(s: Shape): Loaded {
  const total = s.parts.reduce((a, b) => a + b, 0), bytes = 2 * total * s.IN;
  const n = Math.min(64, Math.max(1, Math.ceil(ROTATE_BYTES / bytes)));
  const copies = Array.from({ length: n }, (_, c) => s.parts.map((OUT, i) =>
    o.weight(`w${s.name}.${c}.${i}`, { shape: [OUT, s.IN], dtype: 'bf16', synthetic: { seed: 3 + c, scale: 0.01 } }, true)));
  const gn = o.weight(`gn${s.IN}`, { shape: [s.IN], dtype: 'f32', synthetic: { seed: 4, scale: 1 } }, false);
  return { s, copies, gn, total };
}

/** µs per dispatch (fastest of 3 passes) and the plan the default would take under cfg. */
async function measure(L: Loaded, R: number, cfg: Cfg): Promise<{ us: number; TPR: number; CB: number; UNROLL: number; WG: number }> {
  for (const [k, env] of Object.entries(KNOB)) { const v = cfg[k as keyof Cfg]; if (v === undefined || v === 'd') delete process.env[env]; else process.env[env] = v; }
  const { s } = L;
  const p = plan(o.adapter, R, s.IN, L.total, 'bf16', true, s.kind === 'swiglu', s.kind === 'mm' ? 16 : 8);
  o.allocState([], 1);
  o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });
  const x = o.act('px', s.IN), h = o.act('ph', s.IN), ys = s.parts.map((n, i) => o.act(`py${i}`, n)), gu = o.act('pgu', s.parts[0]!);
  for (const ws of L.copies) {
    const parts = ws.map((w, i) => ({ w, y: ys[i]! }));
    if (s.kind === 'mm') await matmul(o, x, ws[0]!, null, s.act ?? 'none', ys[0]!, s.acc ?? false);
    else await matmulMulti(o, x, { w: L.gn, eps: 1e-5, h }, parts, 'none', false, s.kind === 'swiglu' ? { out: gu } : null);
  }
  // passes of ≥ 48 calls and ≥ ~3 ms (5 µs + the weights at 2 TB/s a call): the submit and wake-up around a pass
  // then stay within a few % of it
  const ds = o.dispatchesForBench(), n = L.copies.length, est = 5 + 2 * L.total * s.IN / 2e6;
  const reps = Math.max(1, Math.ceil(MIN_DISPATCHES / n), Math.ceil(3000 / (n * est)));
  const list = Array.from({ length: reps }, () => ds).flat();
  const run = async () => { const t = performance.now(); const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, list); gpu.submit(enc); await gpu.device.queue.onSubmittedWorkDone(); return performance.now() - t; };
  await run(); await run();
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, await run());
  return { us: best * 1000 / (reps * n), TPR: p.TPR, CB: p.CB, UNROLL: p.UNROLL, WG: p.WG };
}

const gbs = (L: Loaded, us: number) => 2 * L.total * L.s.IN / (us * 1e3);
const fmt = (L: Loaded, R: number, label: string, m: Awaited<ReturnType<typeof measure>>) =>
  `| ${L.s.name} | ${L.total}×${L.s.IN} | ${R} | ${label} | ${m.WG} | ${m.CB} | ${m.TPR} | ${m.UNROLL} | ${m.us.toFixed(2)} | ${gbs(L, m.us).toFixed(0)} |`;
function record(L: Loaded, R: number, phase: string, cfg: Cfg, m: Awaited<ReturnType<typeof measure>>): void {
  if (jsonOut) appendFileSync(jsonOut, JSON.stringify({ shape: L.s.name, kind: L.s.kind, OUT: L.total, IN: L.s.IN, rows: R, phase, cfg, ...m, gbs: +gbs(L, m.us).toFixed(1) }) + '\n');
}
const HEAD = '| shape | OUT×IN | rows | config | WG | cols | lanes | unroll | µs/dispatch | GB/s (weights) |\n|---|---|---|---|---|---|---|---|---|---|';

if (process.argv.includes('--sweep')) {
  const budget = Number(arg('budget', '1e9')) * 1000;
  const summary: string[] = [];
  for (const s of SHAPES) {
    if (performance.now() - t00 > budget) { console.log(`budget reached before ${s.name}`); break; }
    const L = load(s);
    await o.settle();
    for (const R of ROWS) {
      const prev = await measure(L, R, { tuned: '0' }); record(L, R, 'previous', { tuned: '0' }, prev);
      const dflt = await measure(L, R, {}); record(L, R, 'default', {}, dflt);
      const colsSet = s.kind === 'swiglu' ? ['2', '4'] : R === 1 ? ['1', '2'] : ['1', '2', '4'];
      const unSet = R === 1 ? ['2', '4', '8'] : ['1', '2'];
      const laneSet = R === 1 ? ['8', '16', '32', '64', '128', '256'] : ['4', '8', '16', '32', '64', '128'];
      let best = { cfg: {} as Cfg, m: { ...dflt, us: Infinity } };
      const tryCfg = async (phase: string, cfg: Cfg) => {
        const m = await measure(L, R, cfg); record(L, R, phase, cfg, m);
        if (m.us < best.m.us) best = { cfg, m };
      };
      for (const cols of colsSet) for (const unroll of unSet) for (const lanes of laneSet) await tryCfg('grid', { tuned: '0', wg: '256', cols, unroll, lanes });
      const { cols, unroll } = best.cfg;
      if (cols) for (const wg of ['128', '512']) for (const lanes of laneSet) if (Number(lanes) <= Number(wg)) await tryCfg('wg', { tuned: '0', wg, cols, unroll, lanes });
      if (dflt.us < best.m.us) best = { cfg: {}, m: dflt };
      const line = `${fmt(L, R, 'previous', prev)}\n${fmt(L, R, 'default', dflt)}\n${fmt(L, R, `best ${JSON.stringify(best.cfg)}`, best.m)}`;
      console.log(line);
      summary.push(line);
    }
  }
  console.log(`\n${HEAD}\n${summary.join('\n')}`);
  console.log(`sweep: ${((performance.now() - t00) / 1000).toFixed(1)} s`);
} else {
  const AB = Number(arg('ab', '1')), SPLIT = process.argv.includes('--split');
  const COLS = arg('cols', 'd').split(','), LANES = arg('lanes', 'd').split(','), UNROLLS = arg('unroll', 'd').split(','), WGS = arg('wg', 'd').split(',');
  console.log(HEAD);
  for (const s of SHAPES) {
    const L = load(s);
    await o.settle();
    for (const R of ROWS) {
      for (let k = 0; k < AB; k++) {   // previous and tuned default, interleaved
        const prev = await measure(L, R, { tuned: '0' }); record(L, R, 'previous', { tuned: '0' }, prev);
        console.log(fmt(L, R, 'previous (FLA_GEMV_TUNED=0)', prev));
        const dflt = await measure(L, R, {}); record(L, R, 'tuned', {}, dflt);
        console.log(fmt(L, R, 'tuned (default)', dflt));
      }
      if (SPLIT && s.kind !== 'mm') { const m = await measure(L, R, { multi: 'split' }); record(L, R, 'split', { multi: 'split' }, m); console.log(fmt(L, R, 'split (FLA_KERNEL_MATMUL_MULTI=split)', m)); }
      if (SPLIT && s.kind === 'qkv') { const m = await measure(L, R, { partrt: '1' }); record(L, R, 'partrt', { partrt: '1' }, m); console.log(fmt(L, R, 'tuned + FLA_GEMV_PART_RT=1', m)); }
      if (!process.argv.includes('--cols') && !process.argv.includes('--lanes') && !process.argv.includes('--unroll') && !process.argv.includes('--wg')) continue;
      for (const cols of COLS) for (const lanes of LANES) for (const unroll of UNROLLS) for (const wg of WGS) {
        const cfg: Cfg = { cols, lanes, unroll, wg }, m = await measure(L, R, cfg);
        record(L, R, 'default', cfg, m);
        console.log(fmt(L, R, Object.values(cfg).every(v => v === 'd') ? 'default' : JSON.stringify(cfg), m));
      }
    }
  }
}
process.exit(0);
