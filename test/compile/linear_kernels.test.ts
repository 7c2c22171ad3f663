// Compiles every pipeline variant of the gla, abc and feature_map wrappers (kernels/gla, kernels/abc,
// kernels/linear_attn) through their build() functions, at the tiny-fixture shapes and fla's default head shapes
// (GLA dk 256 / dv 512, ABC dk 256 / dv 512 / 64 slots, linear attention dk = dv = 512), and the three pipelines of
// gla's chunked prefill (gla_chunk_{prep,attn,state}) per head shape × gate × feature map. Nothing is dispatched.
import { describe, expect, test } from 'bun:test';
import * as abc from '../../kernels/abc/abc.ts';
import * as gla from '../../kernels/gla/gla.ts';
import { FMAP, type Fmap } from '../../kernels/gla/gla.ref.ts';
import * as fm from '../../kernels/linear_attn/feature_map.ts';
import { FEATURE_LAYERS, FEATURE_MAP, type FeatureMap } from '../../kernels/linear_attn/feature_map.ref.ts';
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import type { StepCtx, View } from '../../src/gpu/launch.ts';
import { gpu, HAS_GPU } from '../helpers/gpu.ts';

let g: Gpu, big: View, small: View, c: StepCtx;
function setup(): void {
  if (big) return;
  g = gpu!;
  const buf = (bytes: number, label: string) => ({ buffer: g.buffer(bytes, label), offset: 0, size: bytes });
  big = buf(1 << 20, 'compile test data');
  small = buf(4096, 'compile test vector');
  c = { uniform: g.buffer(32, 'step', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST), meta: g.buffer(4096, 'meta'), dummy: g.buffer(16, 'dummy'), n: 70, k: 2, b: 3, cap: 128 };
}

async function built(what: string, make: () => Promise<Dispatch>): Promise<Dispatch> {
  g.device.pushErrorScope('validation');
  let d: Dispatch;
  try { d = await make(); } finally {
    const err = await g.device.popErrorScope();
    if (err) throw new Error(`${what}: ${err.message}`);
  }
  return d;
}

describe.skipIf(!HAS_GPU)('linear-attention kernels compile', () => {
  test('gla_recurrent: head shapes × gate × normalize × feature maps', async () => {
    setup();
    const pipelines = new Set<GPUComputePipeline>();
    for (const [DK, DV] of [[32, 64], [64, 64], [128, 128], [256, 512], [512, 512]] as const)
      for (const gate of [false, true]) for (const normalize of [false, true]) {
        const d = await built(`gla DK=${DK} DV=${DV} gate=${gate} normalize=${normalize}`, () => gla.build(g, c, {
          q: big, k: big, v: big, gk: gate ? big : null, state: big, o: big, normalize,
          H: 2, HKV: 1, DK, DV, scale: DK ** -0.5, gateNormalizer: 16, clampMin: null, fmap: 'none',
        }, small));
        expect(d.workgroups).toEqual([2 * DV / Math.min(DV, 64), 3, 1]);
        pipelines.add(d.pipeline);
      }
    for (const fmap of Object.keys(FMAP) as Fmap[])
      pipelines.add((await built(`gla fmap=${fmap}`, () => gla.build(g, c, {
        q: big, k: big, v: big, gk: big, state: big, o: big, normalize: false,
        H: 2, HKV: 2, DK: 64, DV: 64, scale: 0.125, gateNormalizer: 16, clampMin: -1, fmap,
      }, small))).pipeline);
    expect(pipelines.size).toBe(5 * 4 + Object.keys(FMAP).length - 1);   // fmap 'none' gated 64/64 is built twice
  });

  test('gla_chunk_{prep,attn,state}: head shapes × gate × feature maps', async () => {
    setup();
    const pipelines = new Set<GPUComputePipeline>();
    const sc = { qb: big, kb: big, A: big };
    const shapes = [[32, 64], [64, 64], [64, 128], [128, 64], [128, 128], [256, 512], [512, 512]] as const;
    for (const [DK, DV] of shapes) for (const gate of [false, true]) {
      const geo = gla.chunkGeometry(DK, DV, g.maxInvocations, g.maxWorkgroupStorage)!;
      expect(geo).not.toBeNull();
      const ds = await built(`gla chunk DK=${DK} DV=${DV} gate=${gate}`, async () => {
        const r = await gla.buildChunk(g, c, {
          q: big, k: big, v: big, gk: gate ? big : null, state: big, o: big, normalize: false,
          H: 2, HKV: 1, DK, DV, scale: DK ** -0.5, gateNormalizer: 16, clampMin: null, fmap: 'none',
        }, sc, small);
        return r[2]!;
      });
      expect(ds.workgroups).toEqual([2 * DV / geo.BV, 3, 1]);
    }
    for (const [DK, DV] of shapes) for (const gate of [false, true]) for (const fmap of Object.keys(FMAP) as Fmap[]) {
      g.device.pushErrorScope('validation');
      const r = await gla.buildChunk(g, c, {
        q: big, k: big, v: big, gk: gate ? big : null, state: big, o: big, normalize: false,
        H: 2, HKV: 2, DK, DV, scale: 0.125, gateNormalizer: 16, clampMin: -1, fmap,
      }, sc, small);
      const err = await g.device.popErrorScope();
      if (err) throw new Error(`gla chunk DK=${DK} DV=${DV} gate=${gate} fmap=${fmap}: ${err.message}`);
      expect(r.map(d => d.label)).toEqual(['gla_chunk_prep', 'gla_chunk_attn', 'gla_chunk_state']);
      for (const d of r) pipelines.add(d.pipeline);
    }
    // prep: DK × gate × fmap; attn: DK × gate; state: DK (with its BV) × gate — DV is a runtime dim
    const DKs = new Set(shapes.map(s => s[0])).size;
    expect(pipelines.size).toBe(DKs * 2 * Object.keys(FMAP).length + DKs * 2 + DKs * 2);
  });

  test('abc_recurrent: tiny and default shapes', async () => {
    setup();
    for (const [DK, DV, M] of [[32, 64, 32], [64, 64, 64], [128, 128, 32], [256, 512, 64], [64, 512, 128]] as const) {
      const d = await built(`abc DK=${DK} DV=${DV} M=${M}`, () => abc.build(g, c, {
        q: big, k: big, v: big, s: big, state: big, o: big, H: 4, DK, DV, M, scale: DK ** -0.5, clampMin: -32, clampMax: 32,
      }));
      expect(d.workgroups).toEqual([4, 3, 1]);
    }
  });

  test('feature_map: every map × norm × bias × rows k', async () => {
    setup();
    for (const map of Object.keys(FEATURE_MAP) as FeatureMap[]) for (const DK of [64, 512]) for (const norm of [false, true]) for (const rowsK of [false, true]) {
      const layers = FEATURE_LAYERS[map] > 0;
      await built(`feature_map ${map} DK=${DK} norm=${norm} rowsK=${rowsK}`, () => fm.build(g, c, {
        x: big, W: layers ? big : null, b: layers ? small : null, y: big, map, heads: 2, DK, norm, rowsK,
      }));
    }
  });
});
