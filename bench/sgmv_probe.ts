// sgmv probe (issue 15): GPU time per decode-GEMV dispatch of the tensor-core GEMV (matmul / matmul_multi 'sgmv')
// against the f32-FMA GEMVs (FLA_SGMV=0: gemv_vec, matmul_multi fused), for the decode GEMV shapes of llama-1b and
// gated_deltanet-1.3b, per batch rows, and sgmv's geometry knobs (FLA_SGMV_SG / _KSG / _OT / _N). Measured as
// bench/gemv_probe.ts does: passes of ≥ 48 back-to-back dispatches rotating over ≥ 192 MB of weight copies (streamed
// from HBM, not L2), the fastest of 3 passes, per dispatch.
//
//   bun bench/sgmv_probe.ts [--rows 8,16] [--shapes all|NAME,...] [--cfgs old,new,d1,d3,sk1,direct,...] [--budget S] [--warm]
import { matmul } from '../kernels/matmul/matmul.ts';
import type { Act } from '../kernels/matmul/matmul.ref.ts';
import { matmulMulti } from '../kernels/matmul/matmul_gemv_multi.ts';
import type { Weight } from '../src/backend/backend.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';

const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : dflt; };
const t00 = performance.now();

type Kind = 'mm' | 'qkv' | 'swiglu' | 'norm1';
interface Shape { name: string; kind: Kind; IN: number; parts: number[]; act?: Act; acc?: boolean }
const ALL: Shape[] = [
  { name: 'llama o', kind: 'mm', IN: 2048, parts: [2048], acc: true },
  { name: 'llama q|k|v', kind: 'qkv', IN: 2048, parts: [2048, 512, 512] },
  { name: 'llama gate|up', kind: 'swiglu', IN: 2048, parts: [8192, 8192] },
  { name: 'llama down', kind: 'mm', IN: 8192, parts: [2048], acc: true },
  { name: 'llama lm_head', kind: 'norm1', IN: 2048, parts: [128256] },
  { name: 'gdn proj', kind: 'norm1', IN: 2048, parts: [12320] },
  { name: 'gdn o', kind: 'mm', IN: 4096, parts: [2048], acc: true },
  { name: 'gdn gate|up', kind: 'swiglu', IN: 2048, parts: [5632, 5632] },
  { name: 'gdn down', kind: 'mm', IN: 5632, parts: [2048], acc: true },
];
const pick = arg('shapes', 'all');
const SHAPES = pick === 'all' ? ALL : ALL.filter(s => pick.split(',').some(p => s.name.includes(p)));
const ROWS = arg('rows', '8,16').split(',').map(Number);
const budget = Number(arg('budget', '1e9')) * 1000;
// old: the default (the f32-FMA GEMVs); new: FLA_SGMV=1 (sgmv from 5 rows, its default geometry); forced: sgmv at any
// row count; the rest: sgmv with one of its knobs
const ON = { FLA_SGMV: '1' };
const CFGS: Record<string, Record<string, string>> = {
  old: {}, new: ON, forced: { FLA_KERNEL_MATMUL: 'sgmv', FLA_KERNEL_MATMUL_MULTI: 'sgmv' },
  sg4: { ...ON, FLA_SGMV_SG: '4' }, sg2: { ...ON, FLA_SGMV_SG: '2' }, k32: { ...ON, FLA_SGMV_KSG: '32' }, sg4k128: { ...ON, FLA_SGMV_SG: '4', FLA_SGMV_KSG: '128' },
  ot2: { ...ON, FLA_SGMV_OT: '2' }, n16: { ...ON, FLA_SGMV_N: '16' }, d1: { ...ON, FLA_SGMV_DEPTH: '1' }, d3: { ...ON, FLA_SGMV_DEPTH: '3' },
  sk1: { ...ON, FLA_SGMV_SPLITK: '1' }, sk4: { ...ON, FLA_SGMV_SPLITK: '4' }, direct: { ...ON, FLA_SGMV_WSTAGE: '0' }, direct2: { ...ON, FLA_SGMV_WSTAGE: '0', FLA_SGMV_DEPTH: '2' },
};
const cfgs = arg('cfgs', 'old,new').split(',');
const ALL_KNOBS = [...new Set(Object.values(CFGS).flatMap(c => Object.keys(c)))];
// --warm: every pipeline built and run once, nothing timed (a throwaway process: the NVIDIA driver's first process with
// new shaders runs slow for seconds)
const WARM = process.argv.includes('--warm');
const ROTATE_BYTES = WARM ? 1 : 192e6, MIN_DISPATCHES = 48;

console.log(`device: ${gpu.summary.name} (subgroup ${gpu.summary.subgroupMinSize}-${gpu.summary.subgroupMaxSize}, ${gpu.summary.type}); configs ${JSON.stringify(o.adapter.subgroupMatrix)}`);

interface Loaded { s: Shape; copies: Weight[][]; gn: Weight; total: number }
function load(s: Shape): Loaded {
  const total = s.parts.reduce((a, b) => a + b, 0), bytes = 2 * total * s.IN;
  const n = Math.min(64, Math.max(1, Math.ceil(ROTATE_BYTES / bytes)));
  const copies = Array.from({ length: n }, (_, c) => s.parts.map((OUT, i) =>
    o.weight(`w${s.name}.${c}.${i}`, { shape: [OUT, s.IN], dtype: 'bf16', synthetic: { seed: 3 + c, scale: 0.01 } }, true)));
  const gn = o.weight(`gn${s.IN}`, { shape: [s.IN], dtype: 'f32', synthetic: { seed: 4, scale: 1 } }, false);
  return { s, copies, gn, total };
}

async function measure(L: Loaded, R: number, cfg: Record<string, string>): Promise<{ us: number; label: string }> {
  for (const k of ALL_KNOBS) delete process.env[k];
  Object.assign(process.env, cfg);
  const { s } = L;
  o.allocState([], 1);
  o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });
  const x = o.act('px', s.IN), h = o.act('ph', s.IN), ys = s.parts.map((n, i) => o.act(`py${i}`, n)), gu = o.act('pgu', s.parts[0]!);
  for (const ws of L.copies) {
    const parts = ws.map((w, i) => ({ w, y: ys[i]! }));
    if (s.kind === 'mm') await matmul(o, x, ws[0]!, null, s.act ?? 'none', ys[0]!, s.acc ?? false);
    else await matmulMulti(o, x, { w: L.gn, eps: 1e-5, h }, parts, 'none', false, s.kind === 'swiglu' ? { out: gu } : null);
  }
  const ds = o.dispatchesForBench(), n = L.copies.length, est = 5 + 2 * L.total * s.IN / 2e6;
  const label = [...new Set(ds.map((d: { label: string }) => d.label))].join('+');
  const reps = WARM ? 1 : Math.max(1, Math.ceil(MIN_DISPATCHES / n), Math.ceil(3000 / (n * est)));
  const list = Array.from({ length: reps }, () => ds).flat();
  const run = async () => { const t = performance.now(); const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, list); gpu.submit(enc); await gpu.device.queue.onSubmittedWorkDone(); return performance.now() - t; };
  await run();
  if (WARM) return { us: NaN, label };
  await run();
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, await run());
  for (const k of ALL_KNOBS) delete process.env[k];
  return { us: best * 1000 / (reps * n), label };
}

console.log('| shape | OUT×IN | rows | config | kernels | µs/call | GB/s (weights) | vs old |\n|---|---|---|---|---|---|---|---|');
outer: for (const s of SHAPES) {
  const L = load(s);
  await o.settle();
  for (const R of ROWS) {
    let old = NaN;
    for (const c of cfgs) {
      if (performance.now() - t00 > budget) { console.log(`budget reached at ${s.name} R=${R}`); break outer; }
      try {
        const m = await measure(L, R, CFGS[c]!);
        if (c === 'old') old = m.us;
        console.log(`| ${s.name} | ${L.total}×${s.IN} | ${R} | ${c} | ${m.label} | ${m.us.toFixed(2)} | ${(2 * L.total * s.IN / (m.us * 1e3)).toFixed(0)} | ${(old / m.us).toFixed(2)}× |`);
      } catch (e) { console.log(`| ${s.name} | ${L.total}×${s.IN} | ${R} | ${c} | error: ${(e as Error).message.split('\n')[0]} |`); }
    }
  }
}
console.log(`probe: ${((performance.now() - t00) / 1000).toFixed(1)} s`);
process.exit(0);
