// A/B of the subgroup-matrix GEMM in one process (the same command in two processes has differed up to 3× on the
// H200): at each R×OUT×IN, variants interleaved A, B, A, B … (µs a call with every pass of the plan, TFLOP/s, max error
// against f64 on sampled outputs relative to their largest), after a correctness check of the fused x split
// (FLA_SGMAT_FUSE=1) on odd shapes against the f16 reference and the f32 one. A variant is `name:tile/kSK@fuse`
// (tile `select`: sgmatPlan's; fuse 0 / 1: FLA_SGMAT_FUSE; sgmat_f16: the single product).
//   FLA_WEBGPU=dawn bun scripts/sgmat_ab.ts [--budget=S] [--reps=N] [--shapes=RxOUTxIN,...] [--tiles=a,b] [--nocheck|--quickcheck] [--big]
// --big: the single product's tiles at 4096³ too. Weights past 40 M values are synthetic (no error column).
process.env.FLA_KERNEL_MATMUL ||= 'sgmat';   // weights stay f16 on the GPU (what the f16 GEMMs read)
import { matmulOp } from '../kernels/matmul/matmul.ts';
import { matmulRef } from '../kernels/matmul/matmul.ref.ts';
import { matmulF16Ref } from '../kernels/matmul/matmul_f16.ref.ts';
import { SGMAT_TILES, sgmatPlan, sgmatTileOverride, type SgmatTile } from '../kernels/matmul/matmul_sgmat.ts';
import type { Tensor, Weight } from '../src/backend/backend.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';
import { replayUs, runAndRead } from './sgmat_replay.ts';

const arg = (n: string) => process.argv.find(a => a.startsWith(`--${n}=`))?.slice(n.length + 3);
const budget = Number(arg('budget') ?? 40) * 1000, t00 = performance.now(), REPS = Number(arg('reps') ?? 2);
const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
console.log(`${gpu.summary.name}; subgroup matrices ${gpu.subgroupMatrix.map(c => `${c.componentType} ${c.M}x${c.N}x${c.K}->${c.resultComponentType}`).join(', ') || 'none'}`);

let seed = 11;
const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296 * 2 - 1; };
type Args = { x: Tensor; w: Weight; bias: null; y: Tensor; act: 'none'; accumulate: false };
const ctx = (R: number) => ({ adapter: o.adapter, step: { n: R, k: 0, b: 1, lens: [R], maxLen: R, cursors: [] } });
const step = (R: number) => o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });
const tile = (n: string) => { const t = SGMAT_TILES.find(t => t.name === n); if (!t) throw new Error(`no tile ${n}`); return t; };

interface Spec { variant: string; t: SgmatTile | null; sk: number | null; fuse: '0' | '1' | null }
const label = (s: Spec) => `${s.variant}:${s.t?.name ?? 'select'}${s.sk ? `/k${s.sk}` : ''}${s.fuse ? `@${s.fuse}` : ''}`;
async function build(s: Spec, a: Args) {
  const env = process.env.FLA_SGMAT_FUSE;
  if (s.fuse) process.env.FLA_SGMAT_FUSE = s.fuse;
  sgmatTileOverride(s.t, s.sk);
  try { return await o.build(matmulOp, a, s.variant); } finally {
    sgmatTileOverride(null);
    if (env === undefined) delete process.env.FLA_SGMAT_FUSE; else process.env.FLA_SGMAT_FUSE = env;
  }
}
const time = (ds: Awaited<ReturnType<typeof build>>) => replayUs(gpu, ds, 8);   // µs a call, ≥ 8 ms of replays
const output = (ds: Awaited<ReturnType<typeof build>>, y: Tensor, n: number) => runAndRead(gpu, ds, y, n);
const relErr = (g: Float32Array, w: Float32Array) => {
  let d = 0, m = 0;
  for (let i = 0; i < w.length; i++) { const a = Math.abs(g[i]! - w[i]!); d = Math.max(d, Number.isFinite(g[i]!) ? a : Infinity); m = Math.max(m, Math.abs(w[i]!)); }
  return d / m;
};

// 1. correctness of the fused x split (and the pre-pass path beside it) on odd shapes, rows straddling the tiles,
// IN not a multiple of 4 or 8, rows of very different magnitude (the scale is per row and per 256 of K)
let ok = true;
const quickCheck = process.argv.includes('--quickcheck');   // two shapes, fewer tiles
if (!process.argv.includes('--nocheck') && o.adapter.subgroupMatrix?.length) {
  for (const [R, IN, OUT] of (quickCheck ? [[65, 1030, 264], [200, 2052, 136]] : [[17, 130, 200], [65, 1030, 264], [200, 2052, 136], [300, 520, 300]]) as [number, number, number][]) {
    const x = new Float32Array(R * IN);
    for (let r = 0; r < R; r++) for (let i = 0; i < IN; i++) x[r * IN + i] = rnd() * 2 ** ((r % 9) * 3 - 12) * (i > IN / 2 && r % 2 ? 64 : 1);
    const wf = Float32Array.from({ length: OUT * IN }, () => Math.f16round(rnd() / Math.sqrt(IN)));
    const f32 = new Float32Array(R * OUT), split = new Float32Array(R * OUT);
    matmulRef(x, wf, null, f32, R, IN, OUT);
    matmulF16Ref(x, wf, null, split, R, IN, OUT, 'split');
    step(R);
    const xt = o.act(`cx${IN}`, IN), yt = o.act(`cy${OUT}`, OUT);
    const full = new Float32Array(o.capacity(xt) * IN);
    full.set(x);
    o.write(xt, full);
    const w = o.weight(`cw${R}x${IN}x${OUT}`, { shape: [OUT, IN], dtype: 'f16', bits16: new Uint16Array(Float16Array.from(wf).buffer) }, true);
    const a: Args = { x: xt, w, bias: null, y: yt, act: 'none', accumulate: false };
    const line: string[] = [];
    const specs: Spec[] = [{ variant: 'sgmat', t: null, sk: null, fuse: '0' }, { variant: 'sgmat', t: null, sk: null, fuse: '1' },
      ...([['w128', 3], ['q128x64k64', 1], ...(quickCheck ? [] : [['q64', 3]] as const), ['n64', 3]] as const).map(([n, sk]) => ({ variant: 'sgmat', t: tile(n), sk, fuse: '1' as const }))];
    for (const s of specs) {
      if (s.t) { sgmatTileOverride(s.t, s.sk); const fits = sgmatPlan(ctx(R), true, R, OUT, IN) !== null; sgmatTileOverride(null); if (!fits) continue; }
      try {
        const y = await output(await build(s, a), yt, R * OUT), eRef = relErr(y, split), eF = relErr(y, f32);
        const pass = eF < 1e-4 && eRef < 2e-5;
        if (!pass) ok = false;
        line.push(`${label(s)} ${eF.toExponential(1)}/${eRef.toExponential(1)}${pass ? '' : ' FAIL'}`);
      } catch (e) { ok = false; line.push(`${label(s)} ERROR ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`); }
    }
    console.log(`check R=${R} IN=${IN} OUT=${OUT} (vs f32 / vs f16 ref): ${line.join(', ')}`);
  }
  console.log(ok ? 'checks ok' : 'SOME CHECKS FAILED');
}

// clocks up: ~1 s of GEMMs before anything is timed
if (o.adapter.subgroupMatrix?.length) {
  step(2048);
  const a: Args = { x: o.act('wx', 4096), w: o.weight('ww', { shape: [4096, 4096], dtype: 'bf16', synthetic: { seed: 5, scale: 0.02 } }, true), bias: null, y: o.act('wy', 4096), act: 'none', accumulate: false };
  await o.settle();
  const ds = await build({ variant: 'sgmat', t: null, sk: null, fuse: null }, a), t0 = performance.now();
  while (performance.now() - t0 < 1000) await time(ds);
}

// 2. speed: per shape the specs, interleaved REPS times
const S = (variant: string, t: string | null, fuse: '0' | '1' | null, sk: number | null = null): Spec => ({ variant, t: t ? tile(t) : null, sk, fuse });
const listed = arg('shapes')?.split(',').map(s => s.split('x').map(Number) as [number, number, number]);
const extra = arg('tiles')?.split(',') ?? [];
// llama-1b's GEMMs: prefill (512 rows) and batch-64 decode (q|k|v 3072, o 2048, gate / up 8192, down; lm_head)
const DEFAULT: [number, number, number][] = [[4096, 4096, 4096], [512, 2048, 8192], [512, 8192, 2048], [64, 3072, 2048], [512, 2048, 2048],
  [64, 2048, 2048], [64, 8192, 2048], [64, 2048, 8192], [64, 128256, 2048], [512, 128256, 2048]];
const PLAN: [number, number, number, Spec[]][] = (listed ?? DEFAULT).map(([R, OUT, IN]) => [R, OUT, IN, [
  S('sgmat', null, '0'), S('sgmat', null, '1'),
  ...(R >= 4096 && process.argv.includes('--big') ? [S('sgmat_f16', null, null), S('sgmat_f16', 'w256x128', null)] : []),
  ...extra.map(n => S('sgmat', n, '1')),
]]);
const rows: string[] = [];
for (const [R, OUT, IN, specs] of PLAN) {
  if (performance.now() - t00 > budget) { console.log(`budget spent: ${R}x${OUT}x${IN} and after skipped`); continue; }
  const shape = `${R}x${OUT}x${IN}`, flop = 2 * R * OUT * IN;
  step(R);
  const xt = o.act(`x${IN}`, IN), yt = o.act(`y${OUT}`, OUT);
  const x = new Float32Array(o.capacity(xt) * IN);
  for (let i = 0; i < R * IN; i++) x[i] = rnd() * (1 + (i % 7));
  o.write(xt, x);
  const hostW = OUT * IN <= 40e6, h = new Float16Array(hostW ? OUT * IN : 0), sc = 1 / Math.sqrt(IN);
  for (let i = 0; i < h.length; i++) h[i] = rnd() * sc;
  const w = hostW ? o.weight(`w${shape}`, { shape: [OUT, IN], dtype: 'f16', bits16: new Uint16Array(h.buffer) }, true)
    : o.weight(`w${shape}`, { shape: [OUT, IN], dtype: 'bf16', synthetic: { seed: 3, scale: 0.02 } }, true);
  await o.settle();
  const a: Args = { x: xt, w, bias: null, y: yt, act: 'none', accumulate: false };
  // f64 reference on sampled outputs: 24 rows × 32 columns
  const cols = Array.from({ length: 32 }, (_, j) => Math.min(OUT - 1, Math.floor(j * OUT / 32) + (j % 5)));
  const rs = Array.from({ length: Math.min(R, 24) }, (_, j) => Math.min(R - 1, Math.floor(j * R / Math.min(R, 24)) + (j % 3)));
  const exact = hostW ? rs.flatMap(r => cols.map(c => { let s = 0; for (let i = 0; i < IN; i++) s += x[r * IN + i]! * h[c * IN + i]!; return s; })) : [];
  const err = (y: Float32Array) => {
    if (!hostW) return NaN;
    let d = 0, m = 0;
    rs.forEach((r, q) => cols.forEach((c, j) => { const e = exact[q * cols.length + j]!, g = y[r * OUT + c]!; d = Math.max(d, Number.isFinite(g) ? Math.abs(g - e) : Infinity); m = Math.max(m, Math.abs(e)); }));
    return d / m;
  };
  const built: [Spec, Awaited<ReturnType<typeof build>>, number[], number][] = [];
  for (const s of specs) {
    if (s.t) { sgmatTileOverride(s.t, s.sk); const fits = sgmatPlan(ctx(R), s.variant === 'sgmat', R, OUT, IN) !== null; sgmatTileOverride(null); if (!fits) { console.log(`${shape} ${label(s)}: does not fit`); continue; } }
    try {
      const ds = await build(s, a);
      built.push([s, ds, [], hostW ? err(await output(ds, yt, R * OUT)) : NaN]);
    } catch (e) { console.log(`${shape} ${label(s)}: ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`); }
  }
  for (let rep = 0; rep < REPS; rep++) for (const b of built) b[2].push(await time(b[1]));
  const p = sgmatPlan(ctx(R), true, R, OUT, IN), ps = sgmatPlan(ctx(R), false, R, OUT, IN);
  console.log(`${shape}: plan sgmat ${p?.t.name}/k${p?.sk} fused ${p?.fused}; sgmat_f16 ${ps?.t.name}/k${ps?.sk}`);
  for (const [s, ds, us, e] of built) {
    const best = Math.min(...us);
    const line = `${shape} ${label(s)}: ${(flop / best / 1e6).toFixed(1)} TFLOP/s, ${us.map(u => u.toFixed(1)).join(' / ')} us (${ds.length} dispatches), err vs f64 ${e.toExponential(2)}`;
    console.log(line);
    rows.push(line);
  }
}
console.log(`\n${rows.join('\n')}\nab done in ${((performance.now() - t00) / 1000).toFixed(1)} s`);
process.exit(ok ? 0 : 1);
