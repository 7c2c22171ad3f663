// matmul_sgmv (kernels/matmul/matmul_sgmv.ts): the decode GEMV on subgroup matrices, matmul's and matmul_multi's
// 'sgmv'. Any machine: the CPU reference of its split arithmetic (a scale and a restart every KSG of K) against f64;
// its plans and the default choice on an H200-like adapter; every launch resolved in Tint (dawn.node's Null backend
// offers chromium-experimental-subgroup-matrix without configs: parse and resolve, no pipelines). Where the adapter
// has f16 subgroup matrices (the H200; lavapipe has none): rows 1, 7, 8, 9, 16 × shapes 2048×2048, 8192×2048,
// 2048×8192, 1001×2048 (OUT × IN: an odd OUT, the last tile overlapping) against f64 and against the f32-FMA gemv_vec
// on the same f16 weights; the epilogues (bias, activation, accumulate, rows k) and matmul_multi's norm, parts and
// SwiGLU against the CPU reference (the unfused path).
import { describe, expect, test } from 'bun:test';
import { createRequire } from 'node:module';
import { INCLUDES } from '../../../kernels/lib.ts';
import { matmul, matmulOp, type MatmulArgs } from '../../../kernels/matmul/matmul.ts';
import { matmulRef, type Act } from '../../../kernels/matmul/matmul.ref.ts';
import { matmulF16Ref } from '../../../kernels/matmul/matmul_f16.ref.ts';
import { matmulMulti, matmulMultiOp, type MatmulMultiArgs } from '../../../kernels/matmul/matmul_gemv_multi.ts';
import { sgmvPlan, sgmvSplitK } from '../../../kernels/matmul/matmul_sgmv.ts';
import type { Adapter, Ctx } from '../../../src/backend/op.ts';
import type { GpuBackend } from '../../../src/backend/gpu.ts';
import { bindingNames, preprocess } from '../../../src/gpu/wgsl.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { gpu } from '../../helpers/gpu.ts';
import { checkBoth, gpuBackend, hostWeight, runOn, simpleStep, type StepSpec } from './harness.ts';

const f16vals = (v: Float32Array) => Float32Array.from(v, Math.f16round);

/** max |got − want| / max |want| */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < want.length; i++) { d = Math.max(d, Math.abs(got[i]! - want[i]!)); m = Math.max(m, Math.abs(want[i]!)); }
  return d / m;
}

function exactMatmul(x: Float32Array, w: Float32Array, R: number, IN: number, OUT: number): Float64Array {
  const y = new Float64Array(R * OUT);
  for (let r = 0; r < R; r++) for (let o = 0; o < OUT; o++) {
    let s = 0;
    for (let i = 0; i < IN; i++) s += x[r * IN + i]! * w[o * IN + i]!;
    y[r * OUT + o] = s;
  }
  return y;
}

function withEnv<T>(env: Record<string, string | undefined>, f: () => T): T {
  const prev = Object.fromEntries(Object.keys(env).map(k => [k, process.env[k]]));
  const set = (e: Record<string, string | undefined>) => { for (const [k, v] of Object.entries(e)) if (v === undefined) delete process.env[k]; else process.env[k] = v; };
  set(env);
  const done = () => set(prev);
  try {
    const r = f();
    if (r instanceof Promise) return r.finally(done) as T;
    done();
    return r;
  } catch (e) { done(); throw e; }
}

describe('sgmv split arithmetic (CPU reference)', () => {
  test('a scale and an f32 restart every KSG (64, 128) of K: f32-grade against f64, rows of very different scales', () => {
    const R = 5, IN = 1024, OUT = 9, rng = prng('sgmv ref');
    // rows 1e-6 .. 1e2 and, in row 0, one K slice 1e4 times the rest (the scale is per row and slice)
    const x = Float32Array.from(randn(R * IN, rng), (v, i) => v * 10 ** (2 * Math.floor(i / IN) - 6) * (i < 128 ? 1e4 : 1));
    const w = f16vals(randn(OUT * IN, rng, 1 / Math.sqrt(IN)));
    const exact = exactMatmul(x, w, R, IN, OUT);
    const rowErr = (y: ArrayLike<number>) => Math.max(...Array.from({ length: R }, (_, r) =>
      relErr(Array.from({ length: OUT }, (_, o) => y[r * OUT + o]!), Array.from({ length: OUT }, (_, o) => exact[r * OUT + o]!))));
    for (const chunk of [64, 128]) {
      const y = new Float32Array(R * OUT), ym = new Float32Array(R * OUT), y1 = new Float32Array(R * OUT);
      matmulF16Ref(x, w, null, y, R, IN, OUT, 'split', 'none', false, { chunk, blockScale: true });
      // with the tensor cores' truncating adds (the ref's mma model): restarts every KSG keep them short
      matmulF16Ref(x, w, null, ym, R, IN, OUT, 'split', 'none', false, { chunk, blockScale: true, mma: { block: 16, extraBits: 3 } });
      matmulF16Ref(x, w, null, y1, R, IN, OUT, 'single', 'none', false, { chunk, blockScale: true });
      const [e, em, e1] = [rowErr(y), rowErr(ym), rowErr(y1)];
      if (process.env.FLA_TEST_VERBOSE === '1') console.log(`KSG ${chunk}: split ${e.toExponential(2)}, with mma ${em.toExponential(2)}, single ${e1.toExponential(2)}`);
      expect(e).toBeLessThan(2e-6);
      expect(em).toBeLessThan(2e-6);
      expect(e1).toBeGreaterThan(50 * e);   // lo matters: the test can tell
    }
  });
});

const H200: Adapter = {
  kind: 'gpu', type: 'unknown', f16: true, subgroups: true, subgroupSize: 32, maxInvocations: 1024, maxWorkgroupStorage: 49152,
  maxBinding: 2 ** 31 - 4, features: new Set(['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']),
  subgroupMatrix: [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }, { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 8, K: 16 },
    { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 }],
};
const ctxOf = (R: number, a: Adapter = H200): Ctx => ({ adapter: a, step: { n: R, k: R, b: R, lens: Array(R).fill(1), maxLen: 1, cursors: [] } });
const T = (cols: number, rows: 'n' | 'k' = 'n') => ({ rows, cols, planes: 1 }) as any;
const W = (shape: number[], dtype = 'f16') => ({ shape, dtype }) as any;
const mm = (IN: number, OUT: number, o: Partial<MatmulArgs> = {}, rows: 'n' | 'k' = 'n'): MatmulArgs =>
  ({ x: T(IN, rows), w: W([OUT, IN]), bias: null, y: T(OUT, rows), act: 'none', accumulate: false, ...o }) as MatmulArgs;
const qkv = (IN: number, outs: number[], norm: boolean, o: Partial<MatmulMultiArgs> = {}, rows: 'n' | 'k' = 'n'): MatmulMultiArgs => ({
  x: T(IN, rows), norm: norm ? { w: W([IN], 'f32'), eps: 1e-5, h: T(IN, rows) } : null, parts: outs.map(n => ({ w: W([n, IN]), y: T(n, rows) })),
  act: 'none', accumulate: false, ...o,
}) as MatmulMultiArgs;
const swiglu = (IN: number, O: number) => ({ ...qkv(IN, [O, O], true), swiglu: { out: T(O) } }) as MatmulMultiArgs;

describe('sgmv plans and the default choice on an H200-like adapter', () => {
  const env = { FLA_SGMV: undefined, FLA_SGMV_N: undefined, FLA_SGMV_OT: undefined, FLA_SGMV_SG: undefined, FLA_SGMV_KSG: undefined, FLA_SGMV_WSTAGE: undefined, FLA_SGMV_DEPTH: undefined, FLA_SGMV_SPLITK: undefined, FLA_TENSOR_CORES: undefined, FLA_KERNEL_MATMUL: undefined, FLA_KERNEL_MATMUL_MULTI: undefined };
  test('16×8×16 at ≤ 8 rows (hi and lo one matrix each), 16×16×16 at 9..16; W staged, 8 subgroups of 64 of K where they fit', () => withEnv(env, () => {
    const p = (R: number, sw = false) => { const q = sgmvPlan(ctxOf(R), R, 2048, sw)!; return `${q.m.M}x${q.m.N}x${q.m.K} rp${q.RP} sg${q.NSG} k${q.KSG} mt${q.MT}${q.WS ? ' ws' : ''} d${q.PD}`; };
    expect(p(1)).toBe('16x8x16 rp8 sg8 k64 mt1 ws d2');
    expect(p(8)).toBe('16x8x16 rp8 sg8 k64 mt1 ws d2');
    expect(p(8, true)).toBe('16x8x16 rp8 sg4 k64 mt2 ws d2');   // gate and up: twice the W stage
    expect(p(9)).toBe('16x16x16 rp16 sg4 k64 mt1 ws d2');
    withEnv({ FLA_SGMV_N: '16' }, () => expect(p(8)).toBe('16x16x16 rp8 sg8 k64 mt1 ws d2'));
    withEnv({ FLA_SGMV_WSTAGE: '0' }, () => {   // matrix loads straight from the storage buffer
      expect(p(8)).toBe('16x8x16 rp8 sg8 k128 mt1 d1');
      expect(p(8, true)).toBe('16x8x16 rp8 sg8 k64 mt2 d1');   // twice the W matrices a lane holds
      expect(p(16, true)).toBe('16x16x16 rp16 sg4 k64 mt2 d1');
    });
  }));
  test('K slices for outputs of fewer than 132 workgroups (enough for 264, none empty), rows n only', () => withEnv(env, () => {
    const sk = (OUT: number, IN: number, rowsN = true) => sgmvSplitK(sgmvPlan(ctxOf(8), 8, IN, false)!, OUT, IN, rowsN);
    expect([sk(2048, 2048), sk(2048, 8192), sk(2048, 5632), sk(8192, 2048), sk(2048, 8192, false), sk(64, 256)]).toEqual([2, 3, 3, 1, 1, 1]);
    withEnv({ FLA_SGMV_SPLITK: '4' }, () => expect(sk(2048, 8192)).toBe(4));
    expect(sgmvPlan(ctxOf(17), 17, 2048, false)).toBeNull();
    expect(sgmvPlan(ctxOf(8), 8, 2056, false)).toBeNull();   // IN % 16
    expect(sgmvPlan(ctxOf(8, { ...H200, subgroupMatrix: [] }), 8, 2048, false)).toBeNull();
  }));
  test('with FLA_SGMV=1 matmul and matmul_multi pick sgmv for 5..16 rows of f16 weights; by default and with FLA_TENSOR_CORES=0 the f32 GEMVs', () => withEnv({ ...env, FLA_SGMV: '1' }, () => {
    const pick = (R: number, a: MatmulArgs) => matmulOp.select(ctxOf(R), a);
    expect([1, 4, 5, 8, 16, 17].map(R => pick(R, mm(2048, 2048)))).toEqual(['gemv_vec', 'gemv_vec', 'sgmv', 'sgmv', 'sgmv', 'sgmat']);
    expect(pick(8, { ...mm(2048, 2048), w: W([2048, 2048], 'bf16') })).toBe('gemv_vec');
    expect(pick(8, mm(2048, 8))).toBe('gemv_vec');   // OUT < 16
    expect([4, 8, 16].map(R => matmulMultiOp.select(ctxOf(R), qkv(2048, [2048, 512, 512], true)))).toEqual(['fused', 'sgmv', 'sgmv']);
    expect(matmulMultiOp.select(ctxOf(8), swiglu(2048, 8192))).toBe('sgmv');
    withEnv({ FLA_SGMV: undefined }, () => {
      expect(pick(8, mm(2048, 2048))).toBe('gemv_vec');
      expect(matmulMultiOp.select(ctxOf(8), qkv(2048, [2048, 512, 512], true))).toBe('fused');
    });
    withEnv({ FLA_TENSOR_CORES: '0' }, () => expect(pick(8, mm(2048, 2048))).toBe('gemv_vec'));
    withEnv({ FLA_SGMV: '0' }, () => expect(pick(8, mm(2048, 2048))).toBe('gemv_vec'));
  }));
});

async function nullDevice(): Promise<GPUDevice | null> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const { create } = createRequire(import.meta.url)('webgpu/dist/linux-x64/dawn.node');
  const g = create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  (globalThis as any).__flaNullDawnSgmv = g;   // the instance must outlive its device
  const a = await g.requestAdapter();
  if (!a?.features.has('chromium-experimental-subgroup-matrix')) return null;
  return a.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as GPUFeatureName[] });
}
const device = await nullDevice();
if (!device) console.warn('skip: matmul_sgmv WGSL (dawn.node Null backend with subgroup matrices unavailable here)');

describe.skipIf(!device)('matmul_sgmv.wgsl resolves in Tint', () => {
  const cases: [string, () => { ls: { kernel: { name: string; source: string; bindings: readonly string[] }; defines?: Record<string, number | boolean> }[] }][] = [];
  for (const R of [5, 8, 9, 16]) for (const N of ['8', '16']) {
    const c = ctxOf(R), k = (a: MatmulArgs) => ({ ls: matmulOp.variants.sgmv!.launches(a, c) }), m = (a: MatmulMultiArgs) => ({ ls: matmulMultiOp.variants.sgmv!.launches(a, c) });
    cases.push(
      [`R ${R} N ${N} matmul`, () => k(mm(2048, 2048))],
      [`R ${R} N ${N} matmul tanh + bias, accumulate, rows k, OUT 1001`, () => k(mm(256, 1001, { act: 'tanh', bias: W([1001], 'f32'), accumulate: true }, 'k'))],
      [`R ${R} N ${N} multi q|k|v + norm`, () => m(qkv(2048, [2048, 512, 512], true))],
      [`R ${R} N ${N} multi gate|up SwiGLU`, () => m(swiglu(2048, 5632))],
      [`R ${R} N ${N} multi one part, relu², accumulate, rows k`, () => m(qkv(512, [300], false, { act: 'relu2', accumulate: true }, 'k'))],
      [`R ${R} N ${N} multi two parts, OT 2`, () => withEnv({ FLA_SGMV_OT: '2' }, () => m(qkv(1024, [100, 64], false)))],
      // K slices (with the reduction pass), depth 1 and 3
      [`R ${R} N ${N} matmul, K in 3 slices`, () => k(mm(8192, 2048, { accumulate: true, act: 'tanh', bias: W([2048], 'f32') }))],
      [`R ${R} N ${N} matmul, depth 1 and 3`, () => ({ ls: ['1', '3'].flatMap(d => withEnv({ FLA_SGMV_DEPTH: d }, () => k(mm(2048, 2048)).ls)) })],
      // W matrices loaded straight from the storage buffer (FLA_SGMV_WSTAGE=0), with W one or two chunks ahead
      ...['1', '2'].flatMap(d => [
        [`R ${R} N ${N} matmul, W direct, depth ${d}`, () => withEnv({ FLA_SGMV_WSTAGE: '0', FLA_SGMV_DEPTH: d }, () => k(mm(2048, 1001, { bias: W([1001], 'f32') })))],
        [`R ${R} N ${N} multi q|k|v + norm, W direct, depth ${d}`, () => withEnv({ FLA_SGMV_WSTAGE: '0', FLA_SGMV_DEPTH: d }, () => m(qkv(2048, [2048, 512, 512], true)))],
        [`R ${R} N ${N} multi gate|up SwiGLU, W direct, depth ${d}`, () => withEnv({ FLA_SGMV_WSTAGE: '0', FLA_SGMV_DEPTH: d }, () => m(swiglu(2048, 5632)))],
      ] as typeof cases),
    );
  }
  test('every launch: bindings as declared and all used, no WGSL errors', async () => {
    for (const [what, make] of cases) {
      const N = what.includes('N 16') ? '16' : '8';
      const { ls } = withEnv({ FLA_SGMV_N: N }, make);
      for (const l of ls) {
        const code = preprocess(l.kernel.source, l.defines ?? {}, { f16: true, subgroups: true }, INCLUDES);
        expect(bindingNames(code)).toEqual([...l.kernel.bindings]);
        expect(bindingNames(l.kernel.source)).toEqual([...l.kernel.bindings]);
        const bare = code.replace(/\/\/.*$/gm, '');
        const unused = l.kernel.bindings.filter(b => (bare.match(new RegExp(`\\b${b}\\b`, 'g')) ?? []).length < 2);
        expect({ what, unused }).toEqual({ what, unused: [] });
        const info = await device!.createShaderModule({ code }).getCompilationInfo();
        const errors = info.messages.filter(m => m.type === 'error').map(m => `${m.lineNum}:${m.linePos} ${m.message}`);
        expect({ what, errors }).toEqual({ what, errors: [] });
      }
    }
  }, 120_000);
});

// ---- on the GPU, where it has f16 subgroup matrices ----

const why = !gpu ? 'no GPU' : !gpu.f16 ? 'no shader-f16' : sgmvPlan(ctxOf(8, gpuBackend().adapter), 8, 2048, false) ? null : 'no f16 subgroup-matrix config with f32 results (see fla devices)';
if (why) console.warn(`skip: matmul sgmv on the GPU (${why})`);

describe.skipIf(why !== null)('matmul sgmv on the GPU', () => {
  // [OUT, IN]
  const SHAPES: [number, number][] = [[2048, 2048], [8192, 2048], [2048, 8192], [1001, 2048]];
  // the default (W staged, K slices where the output is narrow) and, beside it, 4 K slices with depth 3
  // (W straight from the storage buffer, FLA_SGMV_WSTAGE=0, passed this test on the H200 in round 1 of 2026-12-02)
  const FORMS: [string, Record<string, string>][] = [['default', {}], ['K in 4 slices, depth 3', { FLA_SGMV_SPLITK: '4', FLA_SGMV_DEPTH: '3' }]];
  test('rows 1, 7, 8, 9, 16: against f64, within 2× of the f32-FMA gemv_vec\'s error on the same f16 weights (at least 4e-6)', async () => {
    const lines: string[] = [];
    let worst = 0;
    for (const [OUT, IN] of SHAPES) {
      const rng = prng(`sgmv ${OUT}x${IN}`);
      // the f16 weights as loaded (harness toF16 flushes values below f16's normal range to zero)
      const R = 16, xAll = randn(R * IN, rng), w = randn(OUT * IN, rng, 1 / Math.sqrt(IN)), wf = Float32Array.from(new Float16Array(hostWeight(w, [OUT, IN], 'f16').bits16!.buffer));
      const exactAll = exactMatmul(xAll, wf, R, IN, OUT);
      for (const rows of [1, 7, 8, 9, 16]) {
        const x = xAll.subarray(0, rows * IN), exact = exactAll.subarray(0, rows * OUT);
        const got = await runOn(gpuBackend(), 'gpu', simpleStep(rows), {}, async io => {
          const xt = io.o.act('x', IN), yg = io.o.act('yg', OUT), out: Record<string, typeof yg> = { yg };
          io.put(xt, x);
          io.put(yg);
          const Wt = io.weight('w', hostWeight(w, [OUT, IN], 'f16'));
          for (const [i, [, env]] of FORMS.entries()) {
            const y = io.o.act(`y${i}`, OUT);
            io.put(y);
            await withEnv({ FLA_KERNEL_MATMUL: 'sgmv', ...env }, async () => {
              expect((io.o as GpuBackend).variant(matmulOp, { x: xt, w: Wt, bias: null, y, act: 'none', accumulate: false })).toBe('sgmv');
              await matmul(io.o, xt, Wt, null, 'none', y);
            });
            out[`y${i}`] = y;
          }
          await withEnv({ FLA_KERNEL_MATMUL: 'gemv_vec' }, () => matmul(io.o, xt, Wt, null, 'none', yg));
          return out;
        });
        const eg = relErr(got.yg!.data, exact);
        for (const [i, [form]] of FORMS.entries()) {
          const y = got[`y${i}`]!.data, es = relErr(y, exact);
          const ok = Number.isFinite(es) && es < Math.max(2 * eg, 4e-6);
          worst = Math.max(worst, es);
          lines.push(`sgmv ${form} R=${rows} ${OUT}×${IN}: against f64 ${es.toExponential(2)}, gemv_vec ${eg.toExponential(2)}${ok ? '' : '  FAIL'}`);
          if (!ok) {   // what went wrong: the first outputs of row 0 and of the last row
            const d = (r: number) => Array.from({ length: 4 }, (_, o) => `${y[r * OUT + o]!.toPrecision(6)}/${exact[r * OUT + o]!.toPrecision(6)}`).join(' ');
            lines.push(`  row 0: ${d(0)}; row ${rows - 1}: ${d(rows - 1)}; last column of row 0: ${y[OUT - 1]}/${exact[OUT - 1]}`);
          }
        }
      }
    }
    console.log(lines.join('\n') + `\nsgmv worst against f64: ${worst.toExponential(2)}`);
    expect(lines.filter(l => l.includes('FAIL'))).toEqual([]);
  }, 300_000);

  test('epilogues: bias, tanh / relu², accumulate, rows k, OUT not a multiple of 16 (against the CPU reference, rtol 1e-4)', async () => {
    // IN 2048: K in 2 slices at 8 rows (one subgroup chunk of 512 each), a reduction pass with the epilogue
    for (const [i, act] of (['none', 'tanh', 'relu2'] as Act[]).entries()) for (const R of [5, 8, 13]) {
      const IN = i === 2 ? 2048 : 256, OUT = 72 + i, rng = prng(`sgmv epi ${act} ${R}`), rowsK = i === 1;
      const step: StepSpec = rowsK ? simpleStep(R + 3, Array.from({ length: R }, (_, j) => (j * 5 + 2) % (R + 3))) : simpleStep(R);
      const rows = rowsK ? 'k' as const : 'n' as const;
      const x = randn(R * IN, rng), w = randn(OUT * IN, rng, 1 / Math.sqrt(IN)), b = randn(OUT, rng, 0.5), y0 = randn(R * OUT, rng);
      const accumulate = i !== 1;
      await withEnv({ FLA_KERNEL_MATMUL: 'sgmv' }, () => checkBoth(step, {}, async io => {
        const xt = io.o.act('x', IN, { rows }), yt = io.o.act('y', OUT, { rows });
        io.put(xt, x);
        io.put(yt, accumulate ? y0 : undefined);
        await matmul(io.o, xt, io.weight('w', hostWeight(w, [OUT, IN], 'f16')), io.weight('b', hostWeight(b, [OUT]), false), act, yt, accumulate);
        return { y: yt };
      }, { rtol: 1e-4, what: `sgmv ${act} R=${R}` }));
    }
  }, 300_000);

  test('matmul_multi sgmv: q|k|v behind the norm, gate|up with SwiGLU, one part accumulating on rows k (against the unfused CPU path)', async () => {
    const run = async (what: string, R: number, IN: number, OUTS: number[], norm: boolean, sw: boolean, accumulate: boolean, rowsK: boolean) => {
      const rng = prng(`sgmv multi ${what} ${R}`);
      const step: StepSpec = rowsK ? simpleStep(R + 3, Array.from({ length: R }, (_, j) => (j * 5 + 2) % (R + 3))) : simpleStep(R);
      const rows = rowsK ? 'k' as const : 'n' as const;
      const x = randn(R * IN, rng, 2, 0.3), g = randn(IN, rng, 0.3, 1), ws = OUTS.map(o => randn(o * IN, rng, 1 / Math.sqrt(IN))), y0 = OUTS.map(o => randn(R * o, rng));
      await withEnv({ FLA_KERNEL_MATMUL_MULTI: 'sgmv' }, () => checkBoth(step, {}, async io => {
        const xt = io.o.act('x', IN, { rows }), h = io.o.act('h', IN, { rows });
        io.put(xt, x);
        const ys = OUTS.map((o, i) => { const y = io.o.act(`y${i}`, o, { rows }); io.put(y, accumulate ? y0[i] : undefined); return y; });
        const parts = OUTS.map((o, i) => ({ w: io.weight(`w${i}`, hostWeight(ws[i]!, [o, IN], 'f16')), y: ys[i]! }));
        const nw = norm ? { w: io.weight('g', hostWeight(g, [IN]), false), eps: 1e-5, h } : null;
        const out = sw ? io.o.act('gu', OUTS[0]!, { rows }) : null;
        if (out) io.put(out);
        await matmulMulti(io.o, xt, nw, parts, 'none', accumulate, out ? { out } : null);
        return out ? { gu: out } : Object.fromEntries(ys.map((y, i) => [`y${i}`, y]));
      }, { rtol: 1e-4, what: `sgmv multi ${what} R=${R}` }));
    };
    for (const R of [5, 8, 16]) {
      await run('q|k|v + norm', R, 2048, [2048, 512, 512], true, false, false, false);
      await run('gate|up SwiGLU + norm', R, 2048, [1000, 1000], true, true, false, false);
      await run('one part, accumulate, rows k', R, 512, [300], false, false, true, true);
    }
    await withEnv({ FLA_SGMV_OT: '2' }, () => run('q|k|v + norm, OT 2', 8, 1024, [520, 130, 130], true, false, false, false));
    await withEnv({ FLA_SGMV_WSTAGE: '1' }, async () => {
      await run('q|k|v + norm, W staged', 8, 2048, [2048, 512, 512], true, false, false, false);
      await run('gate|up SwiGLU + norm, W staged', 8, 2048, [1000, 1000], true, true, false, false);
    });
  }, 300_000);
});
