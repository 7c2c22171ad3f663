// The tensor-core GEMM at the shapes the models run (issue 15's batched decode, issue 16's prefill): every candidate
// plan (tile × K slices) at each R×OUT×IN, with TFLOP/s (pre-pass, GEMM and reduce pass replayed together), µs per
// call and the max error against f64 on sampled outputs (every row, 48 columns; relative to the largest of them),
// beside the f32 FMA GEMM, gemv_vec (≤ 64 rows) and what sgmatPlan picks. One line a measurement, as it goes;
// --budget=S stops starting new shapes after S seconds (GPU.sh runs it under a hard cap).
//   FLA_WEBGPU=dawn bun scripts/sgmat_sweep.ts [--decode] [--prefill] [--big] [--shapes=RxOUTxIN,...] [--tiles=a,b] [--budget=60]
process.env.FLA_KERNEL_MATMUL ||= 'sgmat';   // weights stay f16 on the GPU (what the f16 GEMMs read)
import { matmulOp } from '../kernels/matmul/matmul.ts';
import { SGMAT_TILES, sgmatPlan, sgmatTileOverride, type SgmatTile } from '../kernels/matmul/matmul_sgmat.ts';
import type { Tensor, Weight } from '../src/backend/backend.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';
import { replayUs, runAndRead } from './sgmat_replay.ts';

const arg = (n: string) => process.argv.find(a => a.startsWith(`--${n}=`))?.slice(n.length + 3);
const has = (n: string) => process.argv.includes(`--${n}`);
const budget = Number(arg('budget') ?? 60) * 1000, t00 = performance.now();
const all = !has('decode') && !has('prefill') && !has('big');
const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
console.log(`${gpu.summary.name}; subgroup matrices ${gpu.subgroupMatrix.map(c => `${c.componentType} ${c.M}x${c.N}x${c.K}->${c.resultComponentType}`).join(', ') || 'none'}`);

let seed = 7;
const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296 * 2 - 1; };
type Args = { x: Tensor; w: Weight; bias: null; y: Tensor; act: 'none'; accumulate: false };
const ctx = (R: number) => ({ adapter: o.adapter, step: { n: R, k: 0, b: 1, lens: [R], maxLen: R, cursors: [] } });
const step = (R: number) => o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });

async function build(variant: string, t: SgmatTile | null, sk: number, a: Args) {
  sgmatTileOverride(t, sk);
  try { return await o.build(matmulOp, a, variant); } finally { sgmatTileOverride(null); }
}
const time = (ds: Awaited<ReturnType<typeof build>>) => replayUs(gpu, ds, 6);   // µs a call, ≥ 6 ms of replays
const output = (ds: Awaited<ReturnType<typeof build>>, y: Tensor, n: number) => runAndRead(gpu, ds, y, n);

// clocks up: ~1 s of GEMMs before anything is timed (only where the tensor cores run: elsewhere this is a test run)
if (o.adapter.subgroupMatrix?.length) {
  step(2048);
  const a: Args = { x: o.act('wx', 4096), w: o.weight('ww', { shape: [4096, 4096], dtype: 'bf16', synthetic: { seed: 5, scale: 0.02 } }, true), bias: null, y: o.act('wy', 4096), act: 'none', accumulate: false };
  await o.settle();
  const ds = await build('sgmat', null, 1, a), t0 = performance.now();
  while (performance.now() - t0 < 1000) await time(ds);
}

const DEC: [number, number][] = [[3072, 2048], [2048, 2048], [16384, 2048], [2048, 8192], [4096, 2048], [8192, 2048], [512, 2048]];
const PRE: [number, number][] = [[2048, 2048], [3072, 2048], [2048, 8192], [16384, 2048], [8192, 2048]];
const listed = arg('shapes')?.split(',').map(s => s.split('x').map(Number) as [number, number, number]);
const D32: [number, number][] = [[2048, 2048], [3072, 2048], [2048, 8192], [16384, 2048]];
const shapes: [number, number, number][] = listed ?? [   // in order of what matters most (the budget may cut the tail)
  ...(all || has('decode') ? [...DEC, [128256, 2048]].map(([O, I]) => [64, O, I] as [number, number, number]) : []),
  ...(all || has('prefill') ? PRE.map(([O, I]) => [512, O, I] as [number, number, number]) : []),
  ...(all || has('decode') ? [...D32.map(([O, I]) => [32, O, I] as [number, number, number]), [17, 2048, 2048], [16, 2048, 2048], [16, 16384, 2048]] as [number, number, number][] : []),
  ...(all || has('big') ? [[4096, 4096, 4096]] as [number, number, number][] : []),
];
const THIN = ['n32', 'n32d', 'n32x64', 'n64', 'n64d', 'n64k64', 'n64x64', 'n64w8d', 'q64', 'q64k64'];   // 33+ rows: the 64-row ones
const WIDE = ['q128x64k64', 'w128x64', 'w64x128k64', 'q64x128', 'q64', 'q64k64', 'q64d', 'q64k64d', 'w128', 'q128x64', 'q128x64d', 'n64', 'n64k64'];

for (const [R, OUT, IN] of shapes) {
  if (performance.now() - t00 > budget) { console.log(`budget spent: ${R}x${OUT}x${IN} and after skipped`); break; }
  const shape = `${R}x${OUT}x${IN}`, flop = 2 * R * OUT * IN;
  step(R);
  const xt = o.act(`x${IN}`, IN), yt = o.act(`y${OUT}`, OUT);
  const x = new Float32Array(o.capacity(xt) * IN);
  for (let i = 0; i < R * IN; i++) x[i] = rnd() * (1 + (i % 7));
  o.write(xt, x);
  // host f16 weights where the f64 reference is cheap enough to sample; else synthetic (timing only)
  const hostW = OUT * IN <= 40e6;
  let wf: Float32Array | null = null, w: Weight;
  if (hostW) {
    const h = new Float16Array(OUT * IN), sc = 1 / Math.sqrt(IN);
    for (let i = 0; i < h.length; i++) h[i] = rnd() * sc;
    wf = Float32Array.from(h);
    w = o.weight(`w${shape}`, { shape: [OUT, IN], dtype: 'f16', bits16: new Uint16Array(h.buffer) }, true);
  } else w = o.weight(`w${shape}`, { shape: [OUT, IN], dtype: 'bf16', synthetic: { seed: 3, scale: 0.02 } }, true);
  await o.settle();
  const a: Args = { x: xt, w, bias: null, y: yt, act: 'none', accumulate: false };
  const cols = Array.from({ length: 48 }, (_, j) => Math.min(OUT - 1, Math.floor(j * OUT / 48) + (j % 5)));
  const rows = R <= 64 ? Array.from({ length: R }, (_, r) => r) : Array.from({ length: 64 }, (_, j) => Math.min(R - 1, Math.floor(j * R / 64) + (j % 3)));
  const exact = new Float64Array(rows.length * cols.length);
  if (wf) for (const [q, r] of rows.entries()) for (const [j, c] of cols.entries()) {
    let s = 0;
    for (let i = 0; i < IN; i++) s += x[r * IN + i]! * wf[c * IN + i]!;
    exact[q * cols.length + j] = s;
  }
  const err = (y: Float32Array) => {
    if (!wf) return '';
    let d = 0, m = 0;
    for (const [q, r] of rows.entries()) for (const [j, c] of cols.entries()) {
      const e = exact[q * cols.length + j]!, g = y[r * OUT + c]!;
      d = Math.max(d, Number.isFinite(g) ? Math.abs(g - e) : Infinity);
      m = Math.max(m, Math.abs(e));
    }
    return `, err ${(d / m).toExponential(2)}`;
  };
  const measure = async (label: string, variant: string, t: SgmatTile | null, sk = 1) => {
    if (performance.now() - t00 > budget + 4000) return Infinity;   // past the budget: finish the shape quietly
    try {
      const ds = await build(variant, t, sk, a), us = await time(ds);
      const e = err(await output(ds, yt, R * OUT));
      console.log(`${shape} ${label}: ${(flop / us / 1e6).toFixed(1)} TFLOP/s, ${us.toFixed(1)} us${e}`);
      return us;
    } catch (e) { console.log(`${shape} ${label}: ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`); return Infinity; }
  };
  const p = sgmatPlan(ctx(R), true, R, OUT, IN);
  await measure(`select sgmat ${p ? `${p.t.name}/k${p.sk}` : '-'}`, 'sgmat', null);
  await measure('gemm (f32)', 'gemm', null);
  if (R <= 64) await measure('gemv_vec', 'gemv_vec', null);
  if (R >= 4096) {
    for (const n of ['w128', 'w128c', 'q64x128']) await measure(`sgmat ${n}`, 'sgmat', SGMAT_TILES.find(t => t.name === n)!);
    for (const fk of ['512', '1024']) {
      process.env.FLA_SGMAT_FLUSH_K = fk;
      try { await measure(`sgmat w128 flush ${fk}`, 'sgmat', SGMAT_TILES.find(t => t.name === 'w128')!); } finally { delete process.env.FLA_SGMAT_FLUSH_K; }
    }
    const ps = sgmatPlan(ctx(R), false, R, OUT, IN);
    await measure(`select sgmat_f16 ${ps ? ps.t.name : '-'}`, 'sgmat_f16', null);
    for (const n of ['w128x256', 'w256x128']) await measure(`sgmat_f16 ${n}`, 'sgmat_f16', SGMAT_TILES.find(t => t.name === n)!);
    continue;
  }
  const best: [string, number][] = [];
  for (const n of arg('tiles')?.split(',') ?? (R <= 64 ? THIN : WIDE)) {
    const t = SGMAT_TILES.find(t => t.name === n)!;
    if (R > 32 && t.WM * t.TM * 16 < 64) continue;
    sgmatTileOverride(t, 1);
    const fits = sgmatPlan(ctx(R), true, R, OUT, IN) !== null;
    sgmatTileOverride(null);
    if (!fits) { console.log(`${shape} ${n}: does not fit`); continue; }
    const wgs = Math.ceil(R / (t.WM * t.TM * 16)) * Math.ceil(OUT / (t.WN * t.TN * 16));
    for (const sk of R <= 64 ? [1, 4, 8, 16] : [1, 2, 4]) {
      if (sk > 1 && (IN / sk < 256 || wgs * sk > 1100)) continue;
      const us = await measure(`sgmat ${n}/k${sk} (${wgs * sk} wg)`, 'sgmat', t, sk);
      best.push([`${n}/k${sk}`, us]);
    }
  }
  best.sort((a, b) => a[1] - b[1]);
  console.log(`${shape} BEST ${best.slice(0, 4).map(([n, us]) => `${n} ${(flop / us / 1e6).toFixed(1)}`).join(', ')}`);
  // the two best with longer accumulator chains (fewer restarts: faster, less accurate)
  if (R >= 512 || OUT * IN >= 16e6) for (const [n] of best.slice(0, 2)) for (const fk of ['512', '1024']) {
    const [tn, k] = n.split('/k');
    process.env.FLA_SGMAT_FLUSH_K = fk;
    try { await measure(`sgmat ${n} flush ${fk}`, 'sgmat', SGMAT_TILES.find(t => t.name === tn)!, Number(k)); } finally { delete process.env.FLA_SGMAT_FLUSH_K; }
  }
}
console.log(`sweep done in ${((performance.now() - t00) / 1000).toFixed(1)} s`);
process.exit(0);
