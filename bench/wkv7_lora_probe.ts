// wkv7_lora probe (issue 15): GPU time per dispatch of RWKV7's decode time-mix core (kernels/rwkv7/wkv7_lora.ts,
// the variant select picks at decode) at rwkv7-1.5b's shape (C 2048, D 64, ranks 96/96/256/64, bf16 up-projections,
// the shift store on), for batch rows 1 and 8, in one process: per configuration a pass of back-to-back dispatches
// rotating over 24 layers' weights and states (as a model step does), the fastest of 3 passes after a warm-up, per
// dispatch (so it includes the per-dispatch cost inside a pass). Besides the knob settings, ablations of the kernel's
// source (timing only, wrong results): which part of the dispatch's time is the weight stream, the state stream, the
// prologue, or the fixed cost of a dispatch that returns at once.
//
// --proj: instead, the time-mix front before it (rwkv7_proj_ln: LayerNorm + token shift in the prologue of the r|k|v|LoRA
// GEMV, 27 MB of bf16 weights a layer) for FLA_RWKV7_LN_RPT 1, 2, 4, 8 and an empty dispatch, with GB/s of its weights.
//
// --ab: each configuration right after the default, with the ratio (the card's speed has drifted within a process).
//
//   bun bench/wkv7_lora_probe.ts [--rows 1,8] [--configs NAME,...] [--json out.jsonl] [--layers 24] [--reps 40] [--best FILE] [--proj] [--ab]
// --best: writes the knob settings (NAME=VALUE …) of the fastest configuration that is not an ablation at the first
// of --rows (empty: the default) to FILE.
import { appendFileSync, writeFileSync } from 'node:fs';
import { KERNEL, wkv7LoraOp, type Wkv7LoraArgs } from '../kernels/rwkv7/wkv7_lora.ts';
import { kernel, op, type Launch } from '../kernels/lib.ts';
import { LN_KERNEL, lnLaunch, PROJ_INCLUDES, type Rwkv7ProjArgs } from '../kernels/rwkv7/rwkv7_proj.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';

const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : dflt; };
const ROWS = arg('rows', '1,8').split(',').map(Number);
const jsonOut = arg('json', '');
if (jsonOut) writeFileSync(jsonOut, '');
const C = 2048, D = 64, LAYERS = Number(arg('layers', '24')), REPS = Number(arg('reps', '40')), ranks = { w: 96, a: 96, g: 256, v: 64 }, R = ranks.w + ranks.a + ranks.g + ranks.v;

// source ablations: [from, to] replacements of the fused kernel's WGSL (each must match)
type Patch = [string, string][];
const ABLATE: Record<string, Patch> = {
  // the weight rows all from one address (cached): the prologue's FMAs stay, its HBM stream goes
  noW: [['W[min(rg + q * NRG, R - 1u) * wrow + wofs]', 'W[wofs]'], ['W[min(rg + (k0 + q) * NRG, R - 1u) * wrow + wofs]', 'W[wofs]']],
  // no prologue rows at all (the reductions stay)
  noPro: [['let KR = (R + NRG - 1u) / NRG;', 'let KR = 0u;']],
  // the state from one address per column, stored once per thread
  noState: [['S[i] = state[base + (p * SR + i) * D + jc];', 'S[i] = state[base + jc];'],
    ['for (var i = 0u; i < SR; i++) { state[base + (p * SR + i) * D + jc] = S[i]; }', 'state[base + li] = S[0] + S[SR - 1u];']],
  // the prologue's two-stage reductions skipped (one partial stored, no barriers)
  noRed: [['fn reduce_seg(s: u32, acc: array<f32, EPU>, li: u32) {', 'fn reduce_seg(s: u32, acc: array<f32, EPU>, li: u32) {\n  if (s < 100u) { part2[(s * P + li / D) * D + li % D] = acc[0] + acc[EPU - 1u]; return; }']],
  // the recurrence's column, κ and GroupNorm sums skipped (each thread's own partial instead)
  noSync: [['let u = col_sum(up, li);', 'let u = up;'], ['let o = col_sum(op, li);', 'let o = op;'],
    ['let mu = wg_sum(select(0.0, o, p == 0u), li, sg) / f32(D);', 'let mu = o / f32(D);'],
    ['let var_ = wg_sum(select(0.0, d * d, p == 0u), li, sg) / f32(D);', 'let var_ = d * d;'], ['let sums = wg_sum2(contrib, li, sg);', 'let sums = contrib;']],
  // a dispatch that returns at once (every binding still declared)
  empty: [['if (seq >= step.b) { return; }', 'if (seq < 100000u) { return; }']],
};

interface Cfg { name: string; env?: Record<string, string>; ablate?: string; variant?: string }
const CONFIGS: Cfg[] = [
  { name: 'default' },
  { name: 'WG64', env: { FLA_WKV7_LORA_WG: '64' } },
  { name: 'WG256', env: { FLA_WKV7_LORA_WG: '256' } },
  { name: 'WG512', env: { FLA_WKV7_LORA_WG: '512' } },
  { name: 'WG1024', env: { FLA_WKV7_LORA_WG: '1024' } },
  { name: 'KB8', env: { FLA_WKV7_LORA_KB: '8' } },
  { name: 'KB32', env: { FLA_WKV7_LORA_KB: '32' } },
  { name: 'WG256 KB16', env: { FLA_WKV7_LORA_WG: '256', FLA_WKV7_LORA_KB: '16' } },
  { name: 'SGP0', env: { FLA_WKV7_LORA_SGP: '0' } },
  { name: 'SGP0 WG256', env: { FLA_WKV7_LORA_SGP: '0', FLA_WKV7_LORA_WG: '256' } },
  { name: 'fused_wg', variant: 'fused_wg' },
  { name: 'abl noW', ablate: 'noW' },
  { name: 'abl noPro', ablate: 'noPro' },
  { name: 'abl noState', ablate: 'noState' },
  { name: 'abl noW+noState', ablate: 'noW,noState' },
  { name: 'abl noRed', ablate: 'noRed' },
  { name: 'abl noSync', ablate: 'noSync' },
  { name: 'abl noRed+noSync', ablate: 'noRed,noSync' },
  { name: 'abl empty', ablate: 'empty' },
  { name: 'default (again)' },
];
const pick = arg('configs', 'all');
const RUN = pick === 'all' ? CONFIGS : CONFIGS.filter(c => pick.split(',').some(p => c.name.includes(p)));

const KNOBS = ['FLA_WKV7_LORA_WG', 'FLA_WKV7_LORA_KB', 'FLA_WKV7_LORA_SGP', 'FLA_KERNEL_WKV7_LORA'];
function patched(names: string): Launch['kernel'] {
  let src = KERNEL.source;
  for (const n of names.split(',')) for (const [from, to] of ABLATE[n]!) {
    if (!src.includes(from)) throw new Error(`ablation ${n}: '${from}' not in wkv7_lora.wgsl`);
    src = src.split(from).join(to);
  }
  const name = `wkv7_lora_${names.split(',').join('_')}`;
  return kernel(name, src.split('fn wkv7_lora(').join(`fn ${name}(`), KERNEL.bindings);
}
/** The op as select would run it, its launches' kernel swapped for an ablated copy. */
function ablated(names: string) {
  const k = patched(names);
  return op<Wkv7LoraArgs>({
    ...wkv7LoraOp,   // the same name: FLA_KERNEL_WKV7_LORA still forces its variant
    select: (c, a) => wkv7LoraOp.select(c, a),
    variants: Object.fromEntries(Object.entries(wkv7LoraOp.variants).map(([n, v]) => [n, { ...v, launches: (a, c) => v.launches(a, c).map(l => (l.kernel === KERNEL ? { ...l, kernel: k } : l)) }])),
  });
}

console.log(`device: ${gpu.summary.name} (subgroup ${gpu.summary.subgroupMinSize}-${gpu.summary.subgroupMaxSize}, ${gpu.summary.type}), limits: ${o.adapter.maxInvocations} invocations, ${o.adapter.maxWorkgroupStorage} B workgroup memory`);
const PROJ = process.argv.includes('--proj');
const wus = PROJ ? [] : Array.from({ length: LAYERS }, (_, l) => o.weight(`wu${l}`, { shape: [R, C], dtype: 'bf16', synthetic: { seed: 11 + l, scale: 0.05 } }, true));
const params = Array.from({ length: LAYERS }, (_, l) => o.weight(`par${l}`, { shape: [8, C], dtype: 'f32', synthetic: { seed: 51 + l, scale: 0.5 } }, false));
const SLOTS = Math.max(...ROWS);
o.allocState([...Array.from({ length: PROJ ? 0 : LAYERS }, (_, l) => ({ key: `wkv${l}`, cols: C * D })), ...Array.from({ length: LAYERS }, (_, l) => ({ key: `sh${l}`, cols: C }))], SLOTS);
await o.settle();

/** µs per dispatch of the dispatches recorded since the step began: a pass of REPS rounds of them, fastest of 3. */
async function timeRecorded(): Promise<number> {
  const ds = o.dispatchesForBench();
  const list = Array.from({ length: REPS }, () => ds).flat();
  const run = async () => { const t = performance.now(); const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, list); gpu.submit(enc); await gpu.device.queue.onSubmittedWorkDone(); return performance.now() - t; };
  await run(); await run();
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, await run());
  return best * 1000 / list.length;
}

async function projProbe(): Promise<void> {
  const ws = Array.from({ length: LAYERS }, (_, l) => ['r', 'k', 'v', 'l'].map((n, i) =>
    o.weight(`p${n}${l}`, { shape: [i < 3 ? C : R, C], dtype: 'bf16', synthetic: { seed: 100 + 4 * l + i, scale: 0.02 } }, true)));
  const lnw = o.weight('lnw', { shape: [8, C], dtype: 'f32', synthetic: { seed: 7, scale: 0.5 } }, false);
  await o.settle();
  const bytes = 2 * C * (3 * C + R);
  const empty = kernel('rwkv7_proj_ln_empty', LN_KERNEL.source.split('fn rwkv7_proj_ln(').join('fn rwkv7_proj_ln_empty(')
    .replace('  let wg = g.x + g.y * ng.x;', '  if (step.n < 100000u) { return; }\n  let wg = g.x + g.y * ng.x;'), LN_KERNEL.bindings);
  console.log('| rwkv7_proj_ln config | rows | µs/dispatch | GB/s (weights) |\n|---|---|---|---|');
  for (const [name, rpt, k] of [['default', '', LN_KERNEL], ['RPT1', '1', LN_KERNEL], ['RPT2', '2', LN_KERNEL], ['RPT4', '4', LN_KERNEL], ['RPT8', '8', LN_KERNEL], ['empty', '', empty], ['default (again)', '', LN_KERNEL]] as const) for (const B of ROWS) {
    try {
      if (rpt) process.env.FLA_RWKV7_LN_RPT = rpt; else delete process.env.FLA_RWKV7_LN_RPT;
      const theOp = op<{ p: Rwkv7ProjArgs; l: number }>({
        name: 'rwkv7_proj_ln', includes: PROJ_INCLUDES, select: () => 'ln', ref: () => { throw new Error('no reference'); },
        variants: { ln: { launches: (a, c) => [{ ...lnLaunch(a.p, { x: o.act('x', C), lnw, state: o.state(`sh${a.l}`), eps: 1e-5 }, c, true), kernel: k }] } },
      });
      o.beginStep({ ids: new Int32Array(B), cursors: Array.from({ length: B }, (_, s) => ({ slot: s, start: s, len: 1 })), keep: new Int32Array(0) });
      const mix = o.act('mix', C, { planes: 6 }), proj = o.act('proj', C, { planes: 6 }), lora = o.act('lora', R);
      for (let l = 0; l < LAYERS; l++) {
        const [wr, wk, wv, wl] = ws[l]!;
        await o.run(theOp, { l, p: { mix, mixPlanes: [0, 1, 2, 3, 4, 5].map(i => o.plane(mix, i)), wr: wr!, wk: wk!, wv: wv!, wl: wl!, ranks, proj, projPlanes: [0, 1, 2, 3, 4, 5].map(i => o.plane(proj, i)), lora } });
      }
      const us = await timeRecorded();
      delete process.env.FLA_RWKV7_LN_RPT;
      console.log(`| ${name} | ${B} | ${us.toFixed(2)} | ${(bytes / (us * 1e3)).toFixed(0)} |`);
      if (jsonOut) appendFileSync(jsonOut, JSON.stringify({ kernel: 'rwkv7_proj_ln', name, rpt, rows: B, us: +us.toFixed(3) }) + '\n');
    } catch (e) {
      console.log(`| ${name} | ${B} | failed: ${String((e as Error).message ?? e).split('\n')[0]} | |`);
    }
  }
}

async function measure(B: number, cfg: Cfg): Promise<number> {
  for (const k of KNOBS) delete process.env[k];
  for (const [k, v] of Object.entries(cfg.env ?? {})) process.env[k] = v;
  if (cfg.variant) process.env.FLA_KERNEL_WKV7_LORA = cfg.variant;
  const theOp = cfg.ablate ? ablated(cfg.ablate) : wkv7LoraOp;
  o.beginStep({ ids: new Int32Array(B), cursors: Array.from({ length: B }, (_, s) => ({ slot: s, start: s, len: 1 })), keep: new Int32Array(0) });
  const proj = o.act('proj', C, { planes: 6 }), lora = o.act('lora', R), vfirst = o.act('vfirst', C), y = o.act('y', C);
  for (let l = 0; l < LAYERS; l++) {
    await o.run(theOp, {
      proj, lora, wu: wus[l]!, ranks, params: params[l]!, vfirst, state: o.state(`wkv${l}`), out: y, D, fuseNorm: true, gnEps: D * 1e-5,
      shift: { h: o.plane(proj, 4), state: o.state(`sh${l}`) },
    });
  }
  const ds = o.dispatchesForBench();
  const reps = REPS, list = Array.from({ length: reps }, () => ds).flat();
  const run = async () => { const t = performance.now(); const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, list); gpu.submit(enc); await gpu.device.queue.onSubmittedWorkDone(); return performance.now() - t; };
  await run(); await run();
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, await run());
  for (const k of KNOBS) delete process.env[k];
  return best * 1000 / list.length;
}

if (process.argv.includes('--proj')) { await projProbe(); process.exit(0); }
console.log('| config | rows | µs/dispatch |\n|---|---|---|');
let best = { us: Infinity, env: '' };
const bestFile = arg('best', '');
const AB = process.argv.includes('--ab');
for (const cfg of RUN) for (const B of ROWS) {
  try {
    const ref = AB && cfg.name !== 'default' ? await measure(B, { name: 'default' }) : 0;
    const us = await measure(B, cfg);
    if (ref) console.log(`| (default before it) | ${B} | ${ref.toFixed(2)} | ratio ${(us / ref).toFixed(3)} |`);
    if (!cfg.ablate && B === ROWS[0] && us < best.us) {
      best = { us, env: [...Object.entries(cfg.env ?? {}), ...(cfg.variant ? [['FLA_KERNEL_WKV7_LORA', cfg.variant]] : [])].map(([k, v]) => `${k}=${v}`).join(' ') };
      if (bestFile) writeFileSync(bestFile, best.env + '\n');   // as it goes: a killed probe still names its best so far
    }
    console.log(`| ${cfg.name} | ${B} | ${us.toFixed(2)} |`);
    if (jsonOut) appendFileSync(jsonOut, JSON.stringify({ ...cfg, rows: B, us: +us.toFixed(3) }) + '\n');
  } catch (e) {
    console.log(`| ${cfg.name} | ${B} | failed: ${String((e as Error).message ?? e).split('\n')[0]} |`);
  }
}
process.exit(0);
