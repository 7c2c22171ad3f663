// Compiles every pipeline variant the kernel wrappers can produce on this adapter, through the
// wrappers' own build() functions (so the defines are exactly what the backend would ask for), and
// checks that WGSL errors surface as a GpuError naming the kernel. Only builds pipelines and bind
// groups; nothing is dispatched (numerics are in test/regular/kernels).
import { describe, expect, test } from 'bun:test';
import * as embed from '../../kernels/embed/embed.ts';
import * as matmul from '../../kernels/matmul/matmul.ts';
import { ACT, type Act } from '../../kernels/matmul/matmul.ref.ts';
import gemmSource from '../../kernels/matmul/matmul_gemm.wgsl' with { type: 'text' };
import * as layerNorm from '../../kernels/norm/layer_norm.ts';
import * as tokenShift from '../../kernels/rwkv7/token_shift.ts';
import * as wkv7 from '../../kernels/rwkv7/wkv7.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import type { StepCtx, View, WeightDtype } from '../../src/gpu/launch.ts';
import { GpuError } from '../../src/util/errors.ts';
import { gpu, HAS_GPU } from '../helpers/gpu.ts';

const ACTS = Object.keys(ACT) as Act[];
const DTYPES: WeightDtype[] = ['f32', 'bf16', 'f16'];
const BOOLS = [false, true];

// Buffers only have to be large enough for the bind groups; nothing runs.
let g: Gpu, big: View, small: View;
const ctxs = new Map<string, StepCtx>();
function setup(): void {
  if (big) return;
  g = gpu!;
  const buf = (bytes: number, label: string) => ({ buffer: g.buffer(bytes, label), offset: 0, size: bytes });
  big = buf(1 << 20, 'compile test data');
  small = buf(4096, 'compile test vector');
}
/** A step of n tokens, k kept rows, b sequences (select() and the grids read the counts). */
function ctx(n: number, k: number, b = 2): StepCtx {
  const key = `${n},${k},${b}`;
  let c = ctxs.get(key);
  if (!c) {
    c = {
      uniform: g.buffer(32, 'step', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST), meta: g.buffer(4096, 'meta'), dummy: g.buffer(16, 'dummy'),
      n, k, b, cap: Math.ceil(n / 64) * 64,
    };
    ctxs.set(key, c);
  }
  return c;
}

/** Build inside a validation scope, so bind-group errors (which do not throw) fail the test too. */
async function built(what: string, make: () => Promise<Dispatch>): Promise<Dispatch> {
  g.device.pushErrorScope('validation');
  let d: Dispatch;
  try {
    d = await make();
  } finally {
    const err = await g.device.popErrorScope();
    if (err) throw new Error(`${what}: ${err.message}`);
  }
  return d;
}

describe.skipIf(!HAS_GPU)('every kernel variant compiles', () => {
  // every matmul kernel, forced with FLA_KERNEL_MATMUL (the default choice depends on the adapter);
  // GEMV with 32 lanes per row below IN 1024 and 64 from it
  for (const [kernel, IN] of [['gemv', 64], ['gemv', 1024], ['gemm', 130], ['blocked', 130]] as const) {
    test(`matmul_${kernel} IN=${IN}: ${ACTS.length} acts × bias × accumulate × rows k × ${DTYPES.length} dtypes`, async () => {
      setup();
      const pipelines = new Set<GPUComputePipeline>();
      const prev = process.env.FLA_KERNEL_MATMUL;
      process.env.FLA_KERNEL_MATMUL = kernel;
      try {
        for (const act of ACTS) for (const bias of BOOLS) for (const accumulate of BOOLS) for (const rowsK of BOOLS) for (const wdtype of DTYPES) {
          const what = `matmul_${kernel} ${act} bias=${bias} accumulate=${accumulate} rowsK=${rowsK} ${wdtype}`;
          const d = await built(what, () => matmul.build(g, ctx(70, 5), {
            x: big, w: big, wdtype, bias: bias ? small : null, y: big, IN, OUT: 200, act, accumulate, rowsK,
          }));
          expect(d.label).toBe(`matmul_${kernel}`);
          pipelines.add(d.pipeline);
        }
      } finally {
        if (prev === undefined) delete process.env.FLA_KERNEL_MATMUL; else process.env.FLA_KERNEL_MATMUL = prev;
      }
      expect(pipelines.size).toBe(ACTS.length * 2 * 2 * 2 * DTYPES.length);   // every combination is its own variant
    });
  }

  test('matmul default choice builds for few and many rows', async () => {
    setup();
    const prev = process.env.FLA_KERNEL_MATMUL;
    delete process.env.FLA_KERNEL_MATMUL;
    try {
      for (const n of [1, 8, 9, 300])
        await built(`matmul n=${n}`, () => matmul.build(g, ctx(n, 1), { x: big, w: big, wdtype: 'bf16', bias: null, y: big, IN: 64, OUT: 64, act: 'none', accumulate: false, rowsK: false }));
    } finally {
      if (prev !== undefined) process.env.FLA_KERNEL_MATMUL = prev;
    }
  });

  test('layer_norm: workgroup 64 / 128 / 256 × bias × rows k', async () => {
    setup();
    const pipelines = new Set<GPUComputePipeline>();
    for (const C of [64, 128, 200, 256, 1000]) for (const bias of BOOLS) for (const rowsK of BOOLS) {
      const d = await built(`layer_norm C=${C} bias=${bias} rowsK=${rowsK}`,
        () => layerNorm.build(g, ctx(70, 3), { x: big, w: small, b: bias ? small : null, y: big, C, eps: 1e-5, rowsK }));
      pipelines.add(d.pipeline);
    }
    expect(pipelines.size).toBe(3 * 2 * 2);   // C=200 shares WG 128, C=1000 WG 256
  });

  test('wkv7_recurrent: D 64 / 128 × first × fuseNorm', async () => {
    setup();
    const pipelines = new Set<GPUComputePipeline>();
    for (const D of [64, 128]) for (const first of BOOLS) for (const fuseNorm of BOOLS) {
      const d = await built(`wkv7 D=${D} first=${first} fuseNorm=${fuseNorm}`, () => wkv7.build(g, ctx(73, 3, 3), {
        proj: big, vfirst: big, vmix: first ? small : big, params: small, state: big, y: big, C: 2 * D, D, first, fuseNorm, gnEps: D * 1e-5,
      }));
      expect(d.workgroups).toEqual([2, 3, 1]);   // (heads, sequences)
      pipelines.add(d.pipeline);
    }
    expect(pipelines.size).toBe(8);
  });

  test('token_shift, shift_store', async () => {
    setup();
    for (const M of [1, 6])
      await built(`token_shift M=${M}`, () => tokenShift.build(g, ctx(70, 1), { h: big, state: small, mix: small, out: big, C: 64, M }));
    await built('shift_store', () => tokenShift.buildStore(g, ctx(70, 1), { h: big, state: small, C: 64 }));
  });

  test('embed × dtypes, gather_rows', async () => {
    setup();
    const pipelines = new Set<GPUComputePipeline>();
    for (const wdtype of DTYPES) pipelines.add((await built(`embed ${wdtype}`, () => embed.build(g, ctx(70, 1), { table: big, wdtype, x: big, C: 64 }))).pipeline);
    expect(pipelines.size).toBe(3);
    await built('gather_rows', () => embed.buildGather(g, ctx(70, 5), { x: big, y: big, C: 64 }));
  });
});

describe.skipIf(!HAS_GPU)('compile errors are GpuErrors naming the kernel', () => {
  const rejects = async (p: Promise<unknown>, ...parts: string[]) => {
    const err = await p.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    for (const s of parts) expect((err as Error).message).toContain(s);
  };

  test('syntax error', async () => {
    await rejects(gpu!.pipeline({ label: 'broken_syntax_kernel', source: 'fn broken_syntax_kernel( {' }), 'broken_syntax_kernel', 'WGSL compile error');
  });

  test('a real kernel with an injected error (unknown function), variant named', async () => {
    const broken = gemmSource.replace('fma(', 'fmaa(');
    expect(broken).not.toBe(gemmSource);
    // a define no real build uses, so the pipeline cache (keyed by label and defines) cannot answer
    const defines = { ACT: 0, HAS_BIAS: false, ACCUM: false, ROWS_K: false, WDT: 2, W_F32: false, W_F16: false, BROKEN_TEST: 1 };
    await rejects(gpu!.pipeline({ label: 'matmul_gemm', source: broken, defines }), 'matmul_gemm', 'BROKEN_TEST=1', 'fmaa');
  });

  test('type error', async () => {
    await rejects(gpu!.pipeline({ label: 'typed_kernel', source: '@compute @workgroup_size(1) fn typed_kernel() { let x: u32 = 1.5; }' }), 'typed_kernel');
  });

  test('pipeline errors: missing entry point, workgroup over the limit', async () => {
    await rejects(gpu!.pipeline({ label: 'no_entry_kernel', source: '@compute @workgroup_size(1) fn other() {}' }), 'no_entry_kernel', 'pipeline error');
    await rejects(gpu!.pipeline({ label: 'huge_kernel', source: '@compute @workgroup_size(4096) fn huge_kernel() {}' }), 'huge_kernel', 'pipeline error');
  });

  test('a working pipeline after the errors (the device survives)', async () => {
    setup();
    await built('gather_rows', () => embed.buildGather(g, ctx(3, 1), { x: big, y: big, C: 8 }));
  });
});
