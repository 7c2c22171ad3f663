// The f16 GEMMs on the GPU machine (issue 16). 1: correctness of every subgroup-matrix tile (sgmat, sgmat_f16) and of
// f16split on odd shapes against the f16 reference (matmul_f16.ref.ts) and the f32 matmul. 2: TFLOP/s of every tile
// and variant (pre-pass included) at 4096³ and at llama-1b's prefill shapes (R×OUT×IN = 512×2048×2048,
// 512×8192×2048, 512×2048×8192, 512×128256×2048), each with its max relative error against the f32 FMA GEMM on the
// same f16 weights, and what the op's select picks there.
//   FLA_WEBGPU=dawn bun scripts/bench_sgmat.ts [--quick] [--splitk=none|only|both] [--noflush] [--variant=V] [tile,tile,...]
// --noflush: the split variant as one accumulator chain over all of K (no SGMAT_FLUSH_K restarts: the kernel before
// them, whose error grows with K), so its 16-matrix tiles fit again.
process.env.FLA_KERNEL_MATMUL ||= 'sgmat';   // synthetic bf16 weights become f16 on the GPU (what the f16 GEMMs read)
import { matmulOp } from '../kernels/matmul/matmul.ts';
import { matmulRef } from '../kernels/matmul/matmul.ref.ts';
import { matmulF16Ref } from '../kernels/matmul/matmul_f16.ref.ts';
import { SGMAT_TILES, sgmatPlan, sgmatTileOverride, type SgmatTile } from '../kernels/matmul/matmul_sgmat.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import type { Tensor, Weight } from '../src/backend/backend.ts';
import { Gpu } from '../src/gpu/device.ts';
import { replayMs } from './sgmat_replay.ts';

const quick = process.argv.includes('--quick');
const flush = process.argv.includes('--noflush') ? false : null;
const splitk = process.argv.find(a => a.startsWith('--splitk='))?.slice(9) ?? 'both';   // none | only | both
const SK_TILES = ['w128', 'q128', 'q128x64', 'q64', 'q64d', 'q64k64', 'q128x64k64'];
const only = process.argv.slice(2).find(a => !a.startsWith('--'))?.split(',');
const TILES = SGMAT_TILES.filter(t => !only || only.includes(t.name));
const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const s = gpu.summary;
console.log(`${s.name} (${s.backend}, ${s.binding} ${s.bindingVersion}); f16 ${gpu.f16}, subgroups ${s.subgroupMinSize}-${s.subgroupMaxSize}, workgroup memory ${gpu.maxWorkgroupStorage}, invocations ${o.adapter.maxInvocations}`);
console.log(`subgroup matrices: ${gpu.subgroupMatrix.map(c => `${c.componentType} ${c.M}x${c.N}x${c.K}->${c.resultComponentType}`).join(', ') || 'none'}`);

let seed = 99;
const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296 * 2 - 1; };
const rand = (n: number, sc: number) => { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rnd() * sc; return a; };
/** max |g − w| / max |w| */
const relErr = (g: Float32Array, w: Float32Array) => {
  let d = 0, m = 0;
  for (let i = 0; i < w.length; i++) { const a = Math.abs(g[i]! - w[i]!), b = Math.abs(w[i]!); if (a > d || a !== a) d = a !== a ? Infinity : a; if (b > m) m = b; }
  return d / m;
};
const step = (R: number) => o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });
const ctx = (R: number) => ({ adapter: o.adapter, step: { n: R, k: 0, b: 1, lens: [R], maxLen: R, cursors: [] } });
const isSplit = (v: string) => v === 'sgmat' || v === 'f16split';
const fitting = (v: string, R: number, OUT: number) => TILES.filter(t => { sgmatTileOverride(t, null, flush); const p = sgmatPlan(ctx(R), isSplit(v), R, OUT); sgmatTileOverride(null); return p !== null; });
const onlyVariant = process.argv.find(a => a.startsWith('--variant='))?.slice(10);   // sgmat | sgmat_f16: that one alone
const variants = ['sgmat', 'sgmat_f16'].filter(v => (!onlyVariant || v === onlyVariant) && sgmatPlan(ctx(64), isSplit(v)));
console.log(`variants here: ${[...variants, ...(gpu.f16 ? ['f16split'] : [])].join(', ') || 'none'}`);

type Args = { x: Tensor; w: Weight; bias: null; y: Tensor; act: 'none'; accumulate: false };
async function read(t: Tensor, n: number): Promise<Float32Array> {
  const v = (t as any).view;
  return new Float32Array(await gpu.read(v.buffer, v.offset, 4 * n));
}
/** Build `variant` (tile t) for args, run once, read y. */
async function runOnce(variant: string, t: SgmatTile | null, a: Args, n: number, sk: number | null = null): Promise<Float32Array> {
  sgmatTileOverride(t, sk, flush);
  try {
    const ds = await o.build(matmulOp, a, variant);
    const enc = gpu.device.createCommandEncoder();
    gpu.encode(enc, ds);
    gpu.submit(enc);
    return await read(a.y, n);
  } finally { sgmatTileOverride(null); }
}
/** TFLOP/s of `variant` (tile t): replays of the recorded dispatches, ≥ 25 ms of them. */
async function tflops(variant: string, t: SgmatTile | null, a: Args, flop: number, sk: number | null = null): Promise<number> {
  sgmatTileOverride(t, sk, flush);
  let ds!: Awaited<ReturnType<typeof o.build>>;
  try { ds = await o.build(matmulOp, a, variant); } finally { sgmatTileOverride(null); }
  const run = (reps: number) => replayMs(gpu, ds, reps);
  await run(1);
  const t1 = performance.now();
  await run(2);
  const one = Math.max(0.01, (performance.now() - t1) / 2);
  const reps = Math.max(3, Math.min(200, Math.ceil(25 / one)));
  const t0 = performance.now();
  await run(reps);
  return flop / ((performance.now() - t0) / 1000 / reps) / 1e12;
}

// 1. correctness on odd shapes (R, IN, OUT)
let ok = true;
const good: Record<string, Set<string>> = { sgmat: new Set(), sgmat_f16: new Set() };
const shapes = quick ? [[17, 130, 200], [200, 1030, 264]] as const : [[17, 130, 200], [65, 64, 130], [200, 1030, 264], [300, 520, 136]] as const;
for (const [R, IN, OUT] of shapes) {
  const x = rand(R * IN, 2), wf = Float32Array.from(rand(OUT * IN, 1 / Math.sqrt(IN)), Math.f16round);
  const f32 = new Float32Array(R * OUT), split = new Float32Array(R * OUT), single = new Float32Array(R * OUT);
  matmulRef(x, wf, null, f32, R, IN, OUT);
  matmulF16Ref(x, wf, null, split, R, IN, OUT, 'split');
  matmulF16Ref(x, wf, null, single, R, IN, OUT, 'single');
  step(R);
  const xt = o.act(`cx${IN}`, IN), yt = o.act(`cy${OUT}`, OUT);
  const full = new Float32Array(o.capacity(xt) * IN);
  full.set(x);
  o.write(xt, full);
  const w = o.weight(`cw${R}x${IN}x${OUT}`, { shape: [OUT, IN], dtype: 'f16', bits16: new Uint16Array(Float16Array.from(wf).buffer) }, true);
  const a: Args = { x: xt, w, bias: null, y: yt, act: 'none', accumulate: false };
  const line: string[] = [];
  for (const v of [...variants, ...(gpu.f16 ? ['f16split'] : [])]) {
    const runs = v === 'f16split' ? [[null, 1] as const] : fitting(v, R, OUT).flatMap(t => [...(splitk !== 'only' ? [[t, 1] as const] : []), ...(splitk !== 'none' && SK_TILES.includes(t.name) ? [[t, 3] as const] : [])]);
    for (const [t, sk] of runs) {
      const name = `${v}${t ? ':' + t.name : ''}${sk > 1 ? '/k' + sk : ''}`;
      const bad = () => { if (t) { good[v]!.delete(t.name); good[v]!.add(`!${t.name}`); } };
      try {
        const y = await runOnce(v, t, a, R * OUT, sk);
        const eRef = relErr(y, v === 'sgmat_f16' ? single : split), eF = relErr(y, f32);
        const pass = (v === 'sgmat_f16' ? eF < 1.5e-3 : eF < 1e-4) && eRef < (v === 'sgmat_f16' ? 1e-3 : 2e-5);
        if (!pass) { ok = false; bad(); console.log(`check ${name} R=${R} IN=${IN} OUT=${OUT}: vs f16 ref ${eRef.toExponential(2)}, vs f32 ${eF.toExponential(2)} FAIL`); }
        else { line.push(`${name} ${eF.toExponential(1)}`); if (t && !good[v]!.has(`!${t.name}`)) good[v]!.add(t.name); }
      } catch (e) {
        ok = false;
        bad();
        console.log(`check ${name} R=${R} IN=${IN} OUT=${OUT}: ${(e as Error).message.split('\n').slice(0, 3).join(' | ').slice(0, 400)}`);
      }
    }
  }
  console.log(`check R=${R} IN=${IN} OUT=${OUT} (error vs f32): ${line.join(', ')}`);
}
/** tiles also checked and timed with K split (split-K) */
const goodTiles = (v: string) => TILES.filter(t => good[v]!.has(t.name));
console.log(`correct tiles: ${variants.map(v => `${v} ${goodTiles(v).map(t => t.name).join(',')}`).join('; ')}`);

// the GPU's clocks ramp up under load: ~1.5 s of 4096³ GEMMs before anything is timed
if (variants.length) {
  step(4096);
  const xt = o.act('wx', 4096), yt = o.act('wy', 4096);
  const w = o.weight('ww', { shape: [4096, 4096], dtype: 'bf16', synthetic: { seed: 5, scale: 0.02 } }, true);
  await o.settle();
  const t0 = performance.now();
  while (performance.now() - t0 < 1500) await tflops(variants.at(-1)!, null, { x: xt, w, bias: null, y: yt, act: 'none', accumulate: false }, 1);
}

// 2. speed and error against the f32 GEMM at the prefill shapes and 4096³ (R×OUT×IN)
const perf = !variants.length ? [[64, 256, 512]] : quick ? [[512, 2048, 2048], [4096, 4096, 4096]] : [[512, 2048, 2048], [512, 8192, 2048], [512, 2048, 8192], [512, 128256, 2048], [4096, 4096, 4096]];
const table: Record<string, Record<string, string>> = {};
for (const [R, OUT, IN] of perf) {
  const shape = `${R}x${OUT}x${IN}`, flop = 2 * R! * OUT! * IN!;
  step(R!);
  const xt = o.act(`px${IN}`, IN!), yt = o.act(`py${OUT}`, OUT!);
  o.write(xt, rand(o.capacity(xt) * IN!, 1));
  const w = o.weight(`pw${shape}`, { shape: [OUT!, IN!], dtype: 'bf16', synthetic: { seed: 3, scale: 0.02 } }, true);
  await o.settle();
  if (w.dtype !== 'f16') throw new Error(`weights are ${w.dtype}, not f16`);
  const a: Args = { x: xt, w, bias: null, y: yt, act: 'none', accumulate: false };
  const ref = await runOnce('gemm', null, a, R! * OUT!);
  const row: Record<string, string> = {};
  row['gemm (f32 FMA)'] = (await tflops('gemm', null, a, flop)).toFixed(1);
  if (gpu.f16 && splitk !== 'only' && (!quick || !variants.length)) row['f16split'] = `${(await tflops('f16split', null, a, flop)).toFixed(1)} (${relErr(await runOnce('f16split', null, a, R! * OUT!), ref).toExponential(1)})`;
  for (const v of variants) {
    const p = sgmatPlan(ctx(R!), isSplit(v), R!, OUT!, IN!);
    for (const t of goodTiles(v).filter(t => fitting(v, R!, OUT!).includes(t))) {
      const wgs = Math.ceil(R! / (t.WM * t.TM * 16)) * Math.ceil(OUT! / (t.WN * t.TN * 16));
      const sks = SK_TILES.includes(t.name) && wgs < 120 && IN! >= 1024 ? [1, 2, 4, 8] : [1];
      for (const sk of sks.filter(k => splitk === 'both' || (splitk === 'none') === (k === 1))) {
        const sel = p?.t === t && p.sk === sk, label = `${v}:${t.name}${sk > 1 ? '/k' + sk : ''}`;
        try {
          const tf = await tflops(v, t, a, flop, sk), e = relErr(await runOnce(v, t, a, R! * OUT!, sk), ref);
          row[`${label}${sel ? '*' : ''}`] = `${tf.toFixed(1)} (${e.toExponential(1)})`;
          console.log(`${shape} ${label}${sel ? ' (select)' : ''}: ${tf.toFixed(1)} TFLOP/s, max rel err vs f32 gemm ${e.toExponential(2)}`);
        } catch (e) { console.log(`${shape} ${label}: ${(e as Error).message.split('\n')[0]!.slice(0, 300)}`); }
      }
    }
    if (p) console.log(`${shape} ${v} select: ${p.t.name}${p.sk > 1 ? '/k' + p.sk : ''} ${(await tflops(v, null, a, flop)).toFixed(1)} TFLOP/s`);
  }
  console.log(`${shape} gemm (f32 FMA) ${row['gemm (f32 FMA)']} TFLOP/s${row['f16split'] ? `, f16split ${row['f16split']}` : ''}`);
  table[shape] = row;
}
// one table: rows = variant:tile, columns = shapes (TFLOP/s, error vs the f32 GEMM); * = the op's select there
const keys = [...new Set(Object.values(table).flatMap(r => Object.keys(r).map(k => k.replace('*', ''))))];
console.log(`\n| variant:tile | ${Object.keys(table).join(' | ')} |\n|---|${Object.keys(table).map(() => '---').join('|')}|`);
for (const k of keys) console.log(`| ${k} | ${Object.values(table).map(r => r[k] ?? (r[k + '*'] ? r[k + '*'] + ' ←' : '–')).join(' | ')} |`);
console.log(ok ? 'all checks ok' : 'SOME CHECKS FAILED');
process.exit(ok ? 0 : 1);
