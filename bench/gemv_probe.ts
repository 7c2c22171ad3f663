// GEMV probe (issue 15): GPU time per decode-GEMV dispatch and the weight bandwidth / FLOP rate it reaches, for the
// decode shapes of llama-1b and gated_deltanet-1.3b, per row count, register-tile width (FLA_GEMV_COLS) and rows (FLA_GEMV_ROWS) or
// forced matmul variant. Run: bun bench/gemv_probe.ts [--rows 1,8,64] [--cols d,1,2,4] [--kernels gemv_vec,gemv]
// [--rb d,8] [--lanes d,32,128] [--shapes all|small|NAME] (NAME: shapes whose label contains it). 'd' is the default column tile. Each figure: 50 back-to-back dispatches in one pass (so it
// includes the per-dispatch cost inside a pass), mean per dispatch.
import { matmul } from '../kernels/matmul/matmul.ts';
import { matmulMulti } from '../kernels/matmul/matmul_gemv_multi.ts';
import { plan } from '../kernels/matmul/matmul_gemv_vec.ts';
import { GpuBackend } from '../src/backend/gpu.ts';
import { Gpu } from '../src/gpu/device.ts';

const gpu = await Gpu.create();
const o = new GpuBackend(gpu);
const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : dflt; };
// [OUT, IN, what, kind]: plain matmul; 'qkv' = 3 parts behind the norm (OUT = q, k = v = OUT / 4); 'swiglu' = gate|up
type Kind = 'mm' | 'qkv' | 'swiglu';
const ALL: [number, number, string, Kind][] = [
  [2048, 2048, 'llama-1b o', 'mm'], [2048, 2048, 'llama-1b q|k|v +norm', 'qkv'], [8192, 2048, 'llama-1b gate|up +norm swiglu', 'swiglu'],
  [2048, 8192, 'llama-1b down', 'mm'], [128256, 2048, 'llama-1b lm_head', 'mm'],
  [2048, 4096, 'gdn-1.3b o', 'mm'], [5632, 2048, 'gdn-1.3b gate|up +norm swiglu', 'swiglu'], [2048, 5632, 'gdn-1.3b down', 'mm'], [32000, 2048, 'gdn-1.3b lm_head', 'mm'],
  [64, 2048, 'rwkv lora down', 'mm'], [2048, 64, 'rwkv lora up', 'mm'],
];
const pick = arg('shapes', 'all');
const SHAPES = pick === 'all' ? ALL : pick === 'small' ? ALL.filter(s => s[0] * s[1] <= 2048 * 8192) : ALL.filter(s => s[2].includes(pick));
const ROWS = arg('rows', '1,8,16').split(',').map(Number);
const COLS = arg('cols', 'd').split(',');
const RBS = arg('rb', 'd').split(',');   // FLA_GEMV_ROWS values ('d': default)
const LANES = arg('lanes', 'd').split(',');   // FLA_GEMV_LANES values
const UNROLLS = arg('unroll', 'd').split(',');   // FLA_GEMV_UNROLL values
const KERNELS = arg('kernels', 'gemv_vec').split(',');
const REPS = 50;
const lanesOf = (R: number, IN: number, total: number, kind: Kind) => plan(o.adapter, R, IN, total, 'bf16', true, kind === 'swiglu').TPR;
console.log(`device: ${gpu.summary.name} (subgroup ${gpu.summary.subgroupMinSize}-${gpu.summary.subgroupMaxSize})`);
console.log('| shape | OUT×IN | rows | kernel | cols | rb | lanes | unroll | µs/dispatch | GB/s (weights) | TFLOP/s |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
const weight = (OUT: number, IN: number, tag: string) => o.weight(`w${tag}${OUT}x${IN}`, { shape: [OUT, IN], dtype: 'bf16', synthetic: { seed: 3, scale: 0.01 } }, true);
for (const [OUT, IN, what, kind] of SHAPES) {
  const parts = kind === 'qkv' ? [[OUT, 'q'], [OUT / 4, 'k'], [OUT / 4, 'v']] as const : kind === 'swiglu' ? [[OUT, 'g'], [OUT, 'u']] as const : [[OUT, 'm']] as const;
  const ws = parts.map(([n, t]) => weight(n, IN, t));
  const gn = o.weight(`gn${IN}`, { shape: [IN], dtype: 'f32', synthetic: { seed: 4, scale: 1 } }, false);
  const total = parts.reduce((s, [n]) => s + n, 0);
  await o.settle();
  for (const R of ROWS) {
    for (const k of kind === 'mm' ? KERNELS : ['fused']) {
      for (const cols of COLS) for (const rb of RBS) for (const ln of LANES) for (const un of UNROLLS) {
        if (kind === 'mm') process.env.FLA_KERNEL_MATMUL = k; else process.env.FLA_KERNEL_MATMUL_MULTI = k;
        if (cols === 'd') delete process.env.FLA_GEMV_COLS; else process.env.FLA_GEMV_COLS = cols;
        if (rb === 'd') delete process.env.FLA_GEMV_ROWS; else process.env.FLA_GEMV_ROWS = rb;
        if (ln === 'd') delete process.env.FLA_GEMV_LANES; else process.env.FLA_GEMV_LANES = ln;
        if (un === 'd') delete process.env.FLA_GEMV_UNROLL; else process.env.FLA_GEMV_UNROLL = un;
        o.allocState([], 1);
        o.beginStep({ ids: new Int32Array(R), cursors: [{ slot: 0, start: 0, len: R }], keep: new Int32Array(0) });
        const x = o.act('px', IN), h = o.act('ph', IN);
        const ys = parts.map(([n], i) => o.act(`py${i}`, n));
        if (kind === 'mm') await matmul(o, x, ws[0]!, null, 'none', ys[0]!);
        else if (kind === 'qkv') await matmulMulti(o, x, { w: gn, eps: 1e-5, h }, ws.map((w, i) => ({ w, y: ys[i]! })));
        else await matmulMulti(o, x, { w: gn, eps: 1e-5, h }, ws.map((w, i) => ({ w, y: ys[i]! })), 'none', false, { out: o.act('pgu', OUT) });
        const ds = o.dispatchesForBench();
        const run = async () => { const enc = gpu.device.createCommandEncoder(); gpu.encode(enc, Array.from({ length: REPS }, () => ds).flat()); gpu.submit(enc); await gpu.device.queue.onSubmittedWorkDone(); };
        await run();
        const t0 = performance.now();
        await run(); await run();
        const us = (performance.now() - t0) * 1000 / (2 * REPS * ds.length);
        console.log(`| ${what} | ${total}×${IN} | ${R} | ${k}${ds.length > 1 ? ` (${ds.length} dispatches)` : ''} | ${cols} | ${rb} | ${ln === 'd' ? `d (${lanesOf(R, IN, total, kind)})` : ln} | ${un} | ${us.toFixed(2)} | ${(2 * total * IN / (us * 1e3)).toPrecision(3)} | ${(2 * R * total * IN / (us * 1e6)).toPrecision(3)} |`);
      }
    }
  }
}
process.exit(0);
