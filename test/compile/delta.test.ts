// Compiles every pipeline variant of the delta-rule family (kernels/delta) and the short conv (kernels/conv)
// through the wrappers' own build functions, inside a validation scope; nothing is dispatched.
import { describe, expect, test } from 'bun:test';
import * as conv from '../../kernels/conv/short_conv.ts';
import * as delta from '../../kernels/delta/delta_rule.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import type { StepCtx, View } from '../../src/gpu/launch.ts';
import { gpu, HAS_GPU } from '../helpers/gpu.ts';

let g: Gpu, big: View, s: StepCtx;
function setup(): void {
  if (big) return;
  g = gpu!;
  big = { buffer: g.buffer(1 << 22, 'compile test data'), offset: 0, size: 1 << 22 };
  s = { uniform: g.buffer(32, 'step', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST), meta: g.buffer(4096, 'meta'), dummy: g.buffer(16, 'dummy'), n: 70, k: 2, b: 2, cap: 128 };
}

async function built<T extends Dispatch | Dispatch[]>(what: string, make: () => Promise<T>): Promise<T> {
  g.device.pushErrorScope('validation');
  let d: T;
  try { d = await make(); } finally {
    const err = await g.device.popErrorScope();
    if (err) throw new Error(`${what}: ${err.message}`);
  }
  return d;
}

const QK_ACTS: delta.QkAct[] = ['none', 'silu', 'relu', 'elu'];
const QK_NORMS: delta.QkNorm[] = ['l2', 'sum', 'none'];
const B = [false, true];

describe.skipIf(!HAS_GPU)('delta-rule and short-conv variants compile', () => {
  test('short_conv × silu, conv_store', async () => {
    setup();
    for (const act of ['none', 'silu'] as conv.ConvAct[])
      expect((await built(`short_conv ${act}`, () => conv.build(g, s, { x: big, w: big, state: big, y: big, C: 96, W: 4, act }))).label).toBe('short_conv');
    expect((await built('conv_store', () => conv.buildStore(g, s, { x: big, state: big, C: 96, W: 4 }))).label).toBe('conv_store');
  });

  const args = (d: delta.DeltaDims, gate: boolean, beta: boolean): delta.DeltaArgs => ({
    q: big, k: big, v: big, a: gate ? big : null, b: beta ? big : null, gp: gate ? big : null, state: big, o: big, d,
  });
  const sc = (): delta.ChunkScratch => ({ qk: big, gates: big, ab: big });

  test('recurrent and chunked: every activation × norm × v silu × gate × beta × negative eigenvalues (DK = DV = 64)', async () => {
    setup();
    for (const qkAct of QK_ACTS) for (const qkNorm of QK_NORMS) for (const vSilu of B) for (const gate of B) for (const beta of B) for (const negEig of B) {
      const d: delta.DeltaDims = { H: 2, HV: 4, DK: 64, DV: 64, qkAct, qkNorm, vSilu, negEig };
      const what = `delta ${qkAct} ${qkNorm} vSilu=${vSilu} gate=${gate} beta=${beta} negEig=${negEig}`;
      expect((await built(what, () => delta.build(g, s, args(d, gate, beta)))).label).toBe('delta_rule_recurrent');
      expect((await built(what, () => delta.buildChunk(g, s, args(d, gate, beta), sc()))).map(x => x.label))
        .toEqual(['delta_chunk_prep', 'delta_chunk_kkt', 'delta_chunk_solve', 'delta_chunk_state']);
    }
  });

  test('head dims: DK, DV ∈ {16, 64, 128, 256, 512} combinations', async () => {
    setup();
    for (const [DK, DV] of [[16, 16], [64, 128], [128, 64], [128, 128], [256, 512], [512, 256], [256, 48]]) {
      const d: delta.DeltaDims = { H: 1, HV: 2, DK: DK!, DV: DV!, qkAct: 'none', qkNorm: 'l2', vSilu: false, negEig: false };
      await built(`delta recurrent DK=${DK} DV=${DV}`, () => delta.build(g, s, args(d, true, true)));
      await built(`delta chunk DK=${DK} DV=${DV}`, () => delta.buildChunk(g, s, args(d, true, true), sc()));
    }
  });
});
