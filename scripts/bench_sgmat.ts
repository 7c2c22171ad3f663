// The f16 GEMMs on the GPU machine (issue 16): correctness of sgmat / sgmat_f16 / f16split on odd shapes against
// the f16 reference (matmul_f16.ref.ts) and the f32 matmul, then TFLOP/s at S×S×S for every tile, both variants,
// beside the f32-weight gemm.   FLA_WEBGPU=dawn bun scripts/bench_sgmat.ts [S=4096]
import { matmulOp } from '../kernels/matmul/matmul.ts';
import { matmulRef } from '../kernels/matmul/matmul.ref.ts';
import { matmulF16Ref } from '../kernels/matmul/matmul_f16.ref.ts';
import { F16_VARIANTS, SGMAT_TILES, sgmatPlan, sgmatTileOverride, type SgmatTile } from '../kernels/matmul/matmul_sgmat.ts';
import { INCLUDES } from '../kernels/lib.ts';
import { preprocess } from '../src/gpu/wgsl.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';

const S = Number(process.argv[2] ?? 4096);
const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const s = gpu.summary;
console.log(`${s.name} (${s.backend}, ${s.binding} ${s.bindingVersion}); f16 ${gpu.f16}, subgroups ${s.subgroupMinSize}-${s.subgroupMaxSize}, workgroup memory ${gpu.maxWorkgroupStorage}`);
console.log(`subgroup matrices: ${gpu.subgroupMatrix.map(c => `${c.componentType} ${c.M}x${c.N}x${c.K}->${c.resultComponentType}`).join(', ') || 'none'}`);

let seed = 99;
const rnd = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296 * 2 - 1; };
const rand = (n: number, sc: number) => Float32Array.from({ length: n }, () => rnd() * sc);
const relErr = (g: Float32Array, w: Float32Array, rows?: number[], OUT = 0) => {
  let d = 0, m = 0;
  const idx = rows ? rows.flatMap(r => Array.from({ length: OUT }, (_, j) => r * OUT + j)) : [...w.keys()];
  for (const i of idx) { d = Math.max(d, Math.abs(g[i]! - w[i]!)); m = Math.max(m, Math.abs(w[i]!)); }
  return d / m;
};

function step(R: number) {
  o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });
}

/** y = x·Wᵀ on the GPU with `variant`, W given as f16 values. */
async function gpuMatmul(variant: string, x: Float32Array, wf: Float32Array, R: number, IN: number, OUT: number): Promise<Float32Array> {
  step(R);
  const xt = o.act('x', IN), yt = o.act('y', OUT);
  const full = new Float32Array(o.capacity(xt) * IN);
  full.set(x);
  o.write(xt, full);
  const w = o.weight(`w${R}x${IN}x${OUT}`, { shape: [OUT, IN], dtype: 'f16', bits16: new Uint16Array(Float16Array.from(wf).buffer) }, true);
  const ds = await o.build(matmulOp, { x: xt, w, bias: null, y: yt, act: 'none', accumulate: false }, variant);
  return runAndRead(ds, yt, R * OUT);
}

async function runAndRead(ds: Awaited<ReturnType<typeof o.build>>, t: Parameters<typeof o.capacity>[0], n: number): Promise<Float32Array> {
  const enc = gpu.device.createCommandEncoder();
  gpu.encode(enc, ds);
  const v = (t as any).view;
  return new Float32Array(await gpu.read(v.buffer, v.offset, 4 * n, enc));
}

const ctx0 = { adapter: o.adapter, step: { n: 64, k: 0, b: 1, lens: [64], maxLen: 64, cursors: [] } };
const variants = ['sgmat', 'sgmat_f16', 'f16split'].filter(v => v === 'f16split' ? gpu.f16 : sgmatPlan(ctx0, v === 'sgmat'));
console.log(`variants here: ${variants.join(', ') || 'none'}`);

/** Every diagnostic of the WGSL `variant` compiles to with tile `t` (the GpuError keeps only three lines). */
async function diagnose(variant: string, t: SgmatTile | null): Promise<void> {
  sgmatTileOverride(t);
  step(64);
  const a = { x: o.act('dx', 64), w: o.weight('dw', { shape: [64, 64], dtype: 'f16', bits16: new Uint16Array(64 * 64) }, true), bias: null, y: o.act('dy', 64), act: 'none' as const, accumulate: false };
  const l = F16_VARIANTS[variant as 'sgmat']!.launches(a as any, { adapter: o.adapter, step: ctx0.step })[0]!;
  const code = preprocess(l.kernel.source, l.defines ?? {}, { f16: gpu.f16, subgroups: gpu.subgroups }, INCLUDES);
  const mod = gpu.device.createShaderModule({ code });
  const info: any = await (mod as any).getCompilationInfo?.();
  for (const m of info?.messages ?? []) if (m.type !== 'warning' || /deprecat/.test(m.message)) console.log(`  wgsl ${m.type} ${m.lineNum}:${m.linePos}: ${m.message}`);
  const lines = code.split('\n');
  for (const m of (info?.messages ?? []).filter((m: any) => m.type === 'error').slice(0, 3)) console.log(`  line ${m.lineNum}: ${lines[m.lineNum - 1]?.trim()}`);
  o.dispatchesForBench();
}

let ok = true;
const good: Record<string, string[]> = { sgmat: [], sgmat_f16: [] };   // tiles that compile and are correct
const shapes = [[17, 130, 200], [130, 256, 72], [65, 64, 130], [200, 1030, 260], [16, 2048, 128]] as const;
const cases = shapes.map(([R, IN, OUT]) => {
  const x = rand(R * IN, 2), wf = Float32Array.from(rand(OUT * IN, 1 / Math.sqrt(IN)), Math.f16round);
  const f32 = new Float32Array(R * OUT), split = new Float32Array(R * OUT), single = new Float32Array(R * OUT);
  matmulRef(x, wf, null, f32, R, IN, OUT);
  matmulF16Ref(x, wf, null, split, R, IN, OUT, 'split');
  matmulF16Ref(x, wf, null, single, R, IN, OUT, 'single');
  return { R, IN, OUT, x, wf, f32, split, single };
});
for (const v of variants) {
  const tiles: (SgmatTile | null)[] = v === 'f16split' ? [null] : SGMAT_TILES.filter(t => { sgmatTileOverride(t); const p = sgmatPlan(ctx0, v === 'sgmat'); sgmatTileOverride(null); return p !== null; });
  for (const t of tiles) {
    sgmatTileOverride(t);
    let pass = true;
    try {
      for (const c of cases) {
        const y = await gpuMatmul(v, c.x, c.wf, c.R, c.IN, c.OUT);
        const ref = v === 'sgmat_f16' ? c.single : c.split, eRef = relErr(y, ref), eF = relErr(y, c.f32);
        const p = v === 'sgmat_f16' ? eF < 1.5e-3 : eF < 1e-4;
        pass &&= p;
        console.log(`check ${v.padEnd(9)} ${t?.name ?? ''} R=${c.R} IN=${c.IN} OUT=${c.OUT}: vs f16 ref ${eRef.toExponential(2)}, vs f32 matmul ${eF.toExponential(2)} ${p ? 'ok' : 'FAIL'}`);
      }
    } catch (e) {
      pass = false;
      console.log(`check ${v} ${t?.name ?? ''}: ${(e as Error).message.split('\n')[0]!.slice(0, 300)}`);
      try { await diagnose(v, t); } catch (e2) { console.log(`  diagnose: ${(e2 as Error).message.slice(0, 200)}`); }
    }
    sgmatTileOverride(null);
    if (t && pass) good[v]!.push(t.name);
    if (v === 'f16split') ok &&= pass;
  }
}
console.log(`correct tiles: ${JSON.stringify(good)}`);

// S³: time each variant and tile (and the f32 gemm on the same f16 weights) by replaying the dispatches
step(S);
const xt = o.act('bx', S), yt = o.act('by', S);
const w = o.weight('bw', { shape: [S, S], dtype: 'bf16', synthetic: { seed: 3, scale: 0.02 } }, true);
const xs = rand(S * S, 1);
o.write(xt, xs);
await o.settle();
const args = { x: xt, w, bias: null, y: yt, act: 'none' as const, accumulate: false };
async function time(variant: string): Promise<number> {
  const ds = await o.build(matmulOp, args, variant);
  const run = async (reps: number) => {
    const enc = gpu.device.createCommandEncoder();
    for (let i = 0; i < reps; i++) gpu.encode(enc, ds);
    gpu.submit(enc);
    await gpu.device.queue.onSubmittedWorkDone();
  };
  await run(1);
  const t0 = performance.now();
  await run(10);
  return 2 * S ** 3 / ((performance.now() - t0) / 1000 / 10) / 1e12;
}
console.log(`weights ${w.dtype}; ${S}x${S}x${S}:`);
console.log(`gemm (f32 FMA)            ${(await time('gemm')).toFixed(1)} TFLOP/s`);
if (variants.includes('f16split')) console.log(`f16split (no matrices)    ${(await time('f16split')).toFixed(1)} TFLOP/s`);
const tflops: Record<string, number> = {};
for (const v of variants.filter(v => v.startsWith('sgmat'))) {
  for (const t of SGMAT_TILES.filter(t => good[v]!.includes(t.name))) {
    sgmatTileOverride(t);
    try { tflops[`${v}:${t.name}`] = await time(v); console.log(`${v.padEnd(9)} tile ${t.name}: ${tflops[`${v}:${t.name}`]!.toFixed(1)} TFLOP/s`); }
    catch (e) { console.log(`${v} tile ${t.name}: ${(e as Error).message.split('\n')[0]!.slice(0, 300)}`); }
  }
  sgmatTileOverride(null);
}
// the fastest correct split tile's family (FLA_SGMAT_TILE names where the search starts)
const best = Object.entries(tflops).filter(([k]) => k.startsWith('sgmat:')).sort((a, b) => b[1] - a[1])[0];
const bestName = best ? best[0].split(':')[1]! : 'none';
const family = bestName.startsWith('sg64') ? 'sg64' : bestName;
console.log(`SGMAT_BEST=${family}`);
if (best) sgmatTileOverride(SGMAT_TILES.find(t => t.name === bestName)!);
// a check at S: a few rows of the big product against the f16 reference
if (best) {
  const y = await runAndRead(await o.build(matmulOp, args, 'sgmat'), yt, S * S);
  const rows = [0, 1, 127, 128, S - 1];
  const wv = new Float32Array(S * S);   // the synthetic weights, read back as f16
  const wb = new Uint16Array(await gpu.read((w as any).view.buffer, 0, 2 * S * S));
  const h = new Float16Array(wb.buffer);
  for (let i = 0; i < S * S; i++) wv[i] = h[i]!;
  const xr = new Float32Array(rows.length * S), ref = new Float32Array(rows.length * S), f = new Float32Array(rows.length * S);
  rows.forEach((r, i) => xr.set(xs.subarray(r * S, (r + 1) * S), i * S));
  matmulF16Ref(xr, wv, null, ref, rows.length, S, S, 'split');
  matmulRef(xr, wv, null, f, rows.length, S, S);
  const yr = new Float32Array(rows.length * S);
  rows.forEach((r, i) => yr.set(y.subarray(r * S, (r + 1) * S), i * S));
  const e = relErr(yr, f);
  ok &&= e < 1e-4;
  console.log(`check sgmat ${S}³ rows ${rows.join(',')}: vs f16 ref ${relErr(yr, ref).toExponential(2)}, vs f32 matmul ${e.toExponential(2)}`);
}
console.log(ok ? 'all checks ok' : 'SOME CHECKS FAILED');
process.exit(ok ? 0 : 1);
