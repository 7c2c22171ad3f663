// matmul_sgmat.wgsl through Tint on any machine: dawn.node's Null backend offers chromium-experimental-subgroup-matrix
// (no configs, so no pipelines), which is enough to parse and resolve every tile × split × epilogue the matmul op
// would launch on an H200 (f16 16×16×16 → f32, subgroup size 32, 48 KiB of workgroup memory). The first H200 run
// failed exactly here ("'subgroupMatrixStore' requires argument 1 to be uniform"); lavapipe cannot compile it at all.
import { describe, expect, test } from 'bun:test';
import { createRequire } from 'node:module';
import { INCLUDES } from '../../../kernels/lib.ts';
import { F16_VARIANTS, SGMAT_FLUSH_K, SGMAT_ORDER, SGMAT_THIN, SGMAT_TILES, selectF16, sgmatPlan, sgmatTileOverride } from '../../../kernels/matmul/matmul_sgmat.ts';
import { matmulMultiOp } from '../../../kernels/matmul/matmul_gemv_multi.ts';
import { rwkv7ProjOp } from '../../../kernels/rwkv7/rwkv7_proj.ts';
import type { Adapter, Ctx } from '../../../src/backend/op.ts';
import { bindingNames, preprocess } from '../../../src/gpu/wgsl.ts';

const H200: Adapter = {
  kind: 'gpu', type: 'unknown', f16: true, subgroups: true, subgroupSize: 32, maxInvocations: 1024, maxWorkgroupStorage: 49152,
  maxBinding: 2 ** 31 - 4, features: new Set(['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix']),
  subgroupMatrix: [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }, { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 }],
};
const ctx: Ctx = { adapter: H200, step: { n: 130, k: 5, b: 1, lens: [130], maxLen: 130, cursors: [] } };

async function nullDevice(): Promise<GPUDevice | null> {
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const { create } = createRequire(import.meta.url)('webgpu/dist/linux-x64/dawn.node');
  // the instance must outlive its device (src/gpu/binding.ts): keep it where no GC reaches
  const gpu = create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  (globalThis as any).__flaNullDawn = gpu;
  const a = await gpu.requestAdapter();
  if (!a?.features.has('chromium-experimental-subgroup-matrix')) return null;
  return a.requestDevice({ requiredFeatures: ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'] as GPUFeatureName[] });
}

const device = await nullDevice();
if (!device) console.warn('skip: matmul_sgmat WGSL (dawn.node Null backend with subgroup matrices unavailable here)');

describe.skipIf(!device)('matmul_sgmat.wgsl resolves in Tint', () => {
  // sgmat with and without the accumulator flush (SGMAT_FLUSH_K: the default; without, scripts/bench_sgmat.ts compares).
  // The tiles a plan picks by default take every epilogue (act × bias × accumulate); the others, whose epilogue is the
  // same code, one (tanh, bias, accumulate) beside the plain one — each with both row kinds and both W layouts.
  const planned = new Set<string>([...Object.values(SGMAT_ORDER).flat(), ...Object.values(SGMAT_THIN).flat()]);
  // With the flush also the fused x split (FLA_SGMAT_FUSE=1: x read as f32 and split while staged, no pre-pass): the
  // thin tiles it runs on by default (split-K decode) and the wide one FLA_SGMAT_FUSE=1 puts it on.
  for (const [kind, flush, fuse] of [['sgmat', true, '0'], ['sgmat', true, '1'], ['sgmat', false, null], ['sgmat_f16', null, null]] as const) for (const tile of SGMAT_TILES) {
    sgmatTileOverride(tile, null, flush);
    const fits = sgmatPlan(ctx, kind === 'sgmat') !== null && (fuse !== '1' || ['n32', 'n64', 'w128'].includes(tile.name));
    sgmatTileOverride(null);
    const what = kind === 'sgmat' ? `${kind} (${flush ? `flush${fuse === '1' ? ', fused x split' : ''}` : 'one chain'})` : kind;
    test.skipIf(!fits)(`${what} ${tile.name}: act × bias × accumulate × rows k, K split in 1 or 3`, async () => {
      const env = process.env.FLA_SGMAT_FUSE;
      if (fuse) process.env.FLA_SGMAT_FUSE = fuse;
      for (const sk of [1, 3]) {
        sgmatTileOverride(tile, sk, flush);
        try {
          // IN 130: W read by u32 words; 128: as vec4<u32> (WV)
          const epilogues = planned.has(tile.name) && (fuse ?? '0') === '0'   // fused: its epilogue is the pre-pass one's but for the scale
            ? (['none', 'tanh'] as const).flatMap(act => [false, true].flatMap(bias => [false, true].map(accumulate => ({ act, bias, accumulate }))))
            : [{ act: 'none' as const, bias: false, accumulate: false }, { act: 'tanh' as const, bias: true, accumulate: true }];
          for (const { act, bias, accumulate } of epilogues) for (const rows of ['n', 'k'] as const) for (const IN of [130, 128]) {
            const a = { x: { rows, cols: IN }, w: { shape: [200, IN], dtype: 'f16' }, bias: bias ? { shape: [200], dtype: 'f32' } : null, y: { rows, cols: 200 }, act, accumulate } as any;
            const ls = F16_VARIANTS[kind].launches(a, ctx);
          const fused = fuse === '1';   // no pre-pass; x bound in place of xq
          expect(ls.length).toBe((fused ? 1 : 2) + (sk > 1 && rows === 'n' ? 1 : 0));
          expect(ls.some(l => l.kernel.name === 'matmul_sgmat_prep')).toBe(!fused);
          expect(ls.find(l => l.kernel.name === 'matmul_sgmat')!.bind).toHaveProperty(fused ? 'x' : 'xq');
          for (const l of ls) {   // the pre-pass, the GEMM, with K split the reduction
              const code = preprocess(l.kernel.source, l.defines ?? {}, { f16: true, subgroups: true }, INCLUDES);
              expect(bindingNames(code)).toEqual([...l.kernel.bindings]);
            expect(bindingNames(l.kernel.source)).toEqual([...l.kernel.bindings]);   // as test/compile/kernels.test.ts reads it, unpreprocessed
            // every binding used past its declaration: one no code reads drops out of the pipeline's layout, and binding
            // it is a validation error (the first split-K run on the H200 lost the device so: bias only under #if)
            const bare = code.replace(/\/\/.*$/gm, '');
            const unused = l.kernel.bindings.filter(b => (bare.match(new RegExp(`\\b${b}\\b`, 'g')) ?? []).length < 2);
            expect({ kernel: l.kernel.name, unused }).toEqual({ kernel: l.kernel.name, unused: [] });
              const info = await device!.createShaderModule({ code }).getCompilationInfo();
              const errors = info.messages.filter(m => m.type === 'error').map(m => `${m.lineNum}:${m.linePos} ${m.message}`);
              expect({ act, bias, accumulate, rows, IN, sk, errors }).toEqual({ act, bias, accumulate, rows, IN, sk, errors: [] });
            }
          }
        } finally { sgmatTileOverride(null); }
      }
      if (env === undefined) delete process.env.FLA_SGMAT_FUSE; else process.env.FLA_SGMAT_FUSE = env;
    }, 120_000);   // up to 64 Tint compiles: past bun's 5 s on a loaded 2-core machine
  }
});

describe('sgmatPlan on an H200-like adapter (the tiles the sweep measured fastest)', () => {
  const plan = (split: boolean, R: number, OUT: number, IN: number, rowsN = true) => {
    const p = sgmatPlan(ctx, split, R, OUT, IN, rowsN)!;
    return `${p.t.name}${p.sk > 1 ? `/k${p.sk}` : ''}`;
  };
  test('large outputs w128x256 (split, with its f32 sums: w128); llama-1b q/o and down projections at 512 rows the 128×64 / 64×64 K-64 tiles', () => {
    for (const split of [true, false]) {
      expect(plan(split, 4096, 4096, 4096)).toBe(split ? 'w128' : 'w128x256');
      expect(plan(split, 512, 8192, 2048)).toBe(split ? 'w128' : 'w128x256');
      expect(plan(split, 512, 128256, 2048)).toBe(split ? 'w128' : 'w128x256');
      expect(plan(split, 512, 2048, 2048)).toBe(split ? 'q128x64k64' : 'q64k64');
      expect(plan(split, 512, 2048, 8192)).toBe(split ? 'q128x64k64' : 'q64k64');
    }
  });
  test('the split restarts its accumulators every SGMAT_FLUSH_K of K; the single product never', () => {
    expect(sgmatPlan(ctx, true, 4096, 4096, 4096)!.fl * 32).toBe(SGMAT_FLUSH_K);    // w128: K tiles of 32
    expect(sgmatPlan(ctx, true, 512, 2048, 2048)!.fl * 64).toBe(SGMAT_FLUSH_K);     // q128x64k64: K tiles of 64
    expect(sgmatPlan(ctx, false, 4096, 4096, 4096)!.fl).toBe(0);
  });
  test('the fused x split where every workgroup sums one restart block (split-K decode), the pre-pass elsewhere; FLA_SGMAT_FUSE forces', () => {
    const f = (R: number, OUT: number, IN: number) => sgmatPlan(ctx, true, R, OUT, IN)!.fused ? 'fused' : 'prep';
    const env = process.env.FLA_SGMAT_FUSE;
    try {
      delete process.env.FLA_SGMAT_FUSE;
      expect([f(64, 3072, 2048), f(32, 2048, 2048), f(64, 2048, 8192), f(64, 16384, 2048), f(512, 2048, 2048), f(4096, 4096, 4096)]).toEqual(['fused', 'fused', 'prep', 'prep', 'prep', 'prep']);
      expect(sgmatPlan(ctx, false, 64, 3072, 2048)!.fused).toBe(false);   // the single product: no restarts, no fused split
      process.env.FLA_SGMAT_FUSE = '1';
      expect([f(64, 3072, 2048), f(4096, 4096, 4096)]).toEqual(['fused', 'fused']);
      process.env.FLA_SGMAT_FUSE = '0';
      expect(f(64, 3072, 2048)).toBe('prep');
    } finally { if (env === undefined) delete process.env.FLA_SGMAT_FUSE; else process.env.FLA_SGMAT_FUSE = env; }
  });
  test('batched decode (≤ 64 rows): the thin tiles, K split for ≥ 264 workgroups in slices ≥ 256 of K (at most 8), rows n only', () => {
    expect(plan(true, 16, 512, 2048)).toBe('n32/k8');
    expect(plan(true, 16, 512, 2048, false)).toBe('n32');
    expect(plan(true, 17, 2048, 2048)).toBe('n32/k8');
    expect(plan(true, 16, 512, 512)).toBe('n32/k2');   // K too short for more slices
    expect(plan(true, 64, 2048, 2048)).toBe('n64/k8');
    expect(plan(true, 64, 3072, 2048)).toBe('n64/k8');
    expect(plan(true, 64, 2048, 8192)).toBe('n64/k8');
    expect(plan(true, 512, 512, 2048)).toBe('q64/k2');     // past 64 rows: slices up to one wave (120 workgroups)
    expect(plan(true, 64, 16384, 2048)).toBe('n64');   // 128 workgroups
    expect(plan(true, 64, 8192, 2048)).toBe('n64/k3');   // 64 workgroups; partial sums ≤ SGMAT_PART_COLS a row
    expect(plan(true, 64, 128256, 2048)).toBe('n64');
  });
});

describe('ops that launch the matmul op\'s variants declare their scratch (the tensor-core default on an H200-like adapter)', () => {
  // rwkv7_proj's split path crashed rwkv7 prefill with FLA_TENSOR_CORES=1 on the H200 ("matmul_sgmat_prep.xq binds
  // scratch 'xq', which the variant does not declare"); every scratch a launch binds must be in the variant's scratch
  const scratchBound = (ls: { bind: Record<string, unknown> }[]) =>
    [...new Set(ls.flatMap(l => Object.values(l.bind).flatMap(r => r && typeof r === 'object' && 'scratch' in r ? [(r as { scratch: string }).scratch] : [])))].sort();
  const t = (cols: number, planes = 1) => ({ rows: 'n', cols, planes }) as any;
  const w = (shape: number[]) => ({ shape, dtype: 'f16' }) as any;
  const c: Ctx = { adapter: H200, step: { n: 130, k: 5, b: 1, lens: [130], maxLen: 130, cursors: [] } };
  const withFuse = (v: '0' | '1', f: () => void) => {
    const env = process.env.FLA_SGMAT_FUSE;
    process.env.FLA_SGMAT_FUSE = v;
    try { f(); } finally { if (env === undefined) delete process.env.FLA_SGMAT_FUSE; else process.env.FLA_SGMAT_FUSE = env; }
  };
  for (const fuse of ['0', '1'] as const) test(`rwkv7_proj split, matmul_multi split: sgmat chosen past 16 rows, ${fuse === '1' ? 'fused x split: no xq' : 'its xq declared'}`, () => withFuse(fuse, () => {
    const C = 256, ranks = { w: 32, a: 32, g: 64, v: 32 }, R = 160;
    const pa = { mix: t(C, 6), mixPlanes: Array.from({ length: 6 }, () => t(C)), wr: w([C, C]), wk: w([C, C]), wv: w([C, C]), wl: w([R, C]), ranks, proj: t(C, 6), projPlanes: Array.from({ length: 6 }, () => t(C)), lora: t(R) };
    const ma = { x: t(C), norm: null, parts: [{ w: w([512, C]), y: t(512) }, { w: w([128, C]), y: t(128) }], act: 'none', accumulate: false } as any;
    expect(selectF16(c, { x: t(C), w: w([C, C]), bias: null, y: t(C), act: 'none', accumulate: false })).toBe('sgmat');
    for (const [name, v, a] of [['rwkv7_proj', rwkv7ProjOp.variants.split!, pa], ['matmul_multi', matmulMultiOp.variants.split!, ma]] as const) {
      const bound = scratchBound((v.launches as any)(a, c)), declared = Object.keys((v.scratch as any)?.(a, c) ?? {}).sort();
      if (fuse === '0') expect(bound, name).toContain('xq'); else expect(bound, name).not.toContain('xq');
      expect({ name, missing: bound.filter(s => !declared.includes(s)) }).toEqual({ name, missing: [] });
    }
  }));
  test('matmul_multi split: one x pre-pass for all parts on the same x, one each where a part has its own', () => withFuse('0', () => {
    const C = 256, parts = [{ w: w([512, C]), y: t(512) }, { w: w([128, C]), y: t(128) }, { w: w([128, C]), y: t(128) }];
    const preps = (a: any) => (matmulMultiOp.variants.split!.launches as any)(a, c).filter((l: any) => l.kernel.name === 'matmul_sgmat_prep').length;
    expect(preps({ x: t(C), norm: null, parts, act: 'none', accumulate: false })).toBe(1);
    expect(preps({ x: t(C), norm: null, parts: [...parts, { w: w([64, C]), y: t(64), xp: t(C) }], act: 'none', accumulate: false })).toBe(2);
  }));
});
