// Compiles every pipeline variant of the gla, abc and feature_map ops (kernels/gla, kernels/abc, kernels/linear_attn)
// through the backend's build, at the tiny-fixture shapes and fla's default head shapes (GLA dk 256 / dv 512, ABC
// dk 256 / dv 512 / 64 slots, linear attention dk = dv = 512), and the three pipelines of gla's chunked prefill
// (gla_chunk_{prep,attn,state}) per head shape × gate × feature map. Nothing is dispatched.
import { describe, expect, test } from 'bun:test';
import { abcOp } from '../../kernels/abc/abc.ts';
import { abcStateCols } from '../../kernels/abc/abc.ref.ts';
import { chunkGeometry, glaOp, type GlaArgs } from '../../kernels/gla/gla.ts';
import { FMAP, glaStateCols, type Fmap } from '../../kernels/gla/gla.ref.ts';
import { featureMapOp } from '../../kernels/linear_attn/feature_map.ts';
import { FEATURE_LAYERS, FEATURE_MAP, type FeatureMap } from '../../kernels/linear_attn/feature_map.ref.ts';
import { HAS_GPU } from '../helpers/gpu.ts';
import { built, gpuBackend, state, step, t, w } from './build.ts';

function glaArgs(DK: number, DV: number, H: number, HKV: number, gate: boolean, normalize: boolean, fmap: Fmap = 'none', clampMin: number | null = null): GlaArgs {
  return {
    q: t(H * DK), k: t(HKV * DK, { name: 'k' }), v: t(HKV * DV, { name: 'v' }), gk: gate ? t(HKV * DK, { name: 'gk' }) : null,
    state: state(glaStateCols({ H, DK, DV, normalize }), 3), out: t(H * DV, { name: 'o' }), normalize,
    H, HKV, DK, DV, scale: DK ** -0.5, gateNormalizer: 16, clampMin, fmap,
  };
}

describe.skipIf(!HAS_GPU)('linear-attention kernels compile', () => {
  test('gla_recurrent: head shapes × gate × normalize × feature maps', async () => {
    step([40, 29, 1], 3);
    const pipelines = new Set<GPUComputePipeline>();
    for (const [DK, DV] of [[32, 64], [64, 64], [128, 128], [256, 512], [512, 512]] as const)
      for (const gate of [false, true]) for (const normalize of [false, true]) {
        const [d] = await built(`gla DK=${DK} DV=${DV} gate=${gate} normalize=${normalize}`, glaOp, glaArgs(DK, DV, 2, 1, gate, normalize), 'recurrent');
        expect(d!.workgroups).toEqual([2 * DV / Math.min(DV, 64), 3, 1]);
        pipelines.add(d!.pipeline);
      }
    for (const fmap of Object.keys(FMAP) as Fmap[])
      pipelines.add((await built(`gla fmap=${fmap}`, glaOp, glaArgs(64, 64, 2, 2, true, false, fmap, -1), 'recurrent'))[0]!.pipeline);
    expect(pipelines.size).toBe(5 * 4 + Object.keys(FMAP).length - 1);   // fmap 'none' gated 64/64 is built twice
  });

  test('gla_chunk_{prep,attn,state}: head shapes × gate × feature maps', async () => {
    step([40, 29, 1], 3);
    const g = gpuBackend().adapter;
    const pipelines = new Set<GPUComputePipeline>();
    const shapes = [[32, 64], [64, 64], [64, 128], [128, 64], [128, 128], [256, 512], [512, 512]] as const;
    for (const [DK, DV] of shapes) for (const gate of [false, true]) {
      const geo = chunkGeometry(DK, DV, g.maxInvocations, g.maxWorkgroupStorage)!;
      expect(geo).not.toBeNull();
      const ds = await built(`gla chunk DK=${DK} DV=${DV} gate=${gate}`, glaOp, glaArgs(DK, DV, 2, 1, gate, false), 'chunk');
      expect(ds[2]!.workgroups).toEqual([2 * DV / geo.BV, 3, 1]);
    }
    for (const [DK, DV] of shapes) for (const gate of [false, true]) for (const fmap of Object.keys(FMAP) as Fmap[]) {
      const r = await built(`gla chunk DK=${DK} DV=${DV} gate=${gate} fmap=${fmap}`, glaOp, glaArgs(DK, DV, 2, 2, gate, false, fmap, -1), 'chunk');
      expect(r.map(d => d.label)).toEqual(['gla_chunk_prep', 'gla_chunk_attn', 'gla_chunk_state']);
      for (const d of r) pipelines.add(d.pipeline);
    }
    // prep: DK × gate × fmap; attn: DK × gate; state: DK (with its BV) × gate — DV is a runtime dim
    const DKs = new Set(shapes.map(s => s[0])).size;
    expect(pipelines.size).toBe(DKs * 2 * Object.keys(FMAP).length + DKs * 2 + DKs * 2);
  });

  test('abc_recurrent: tiny and default shapes', async () => {
    step([40, 29, 1], 3);
    for (const [DK, DV, M] of [[32, 64, 32], [64, 64, 64], [128, 128, 32], [256, 512, 64], [64, 512, 128]] as const) {
      const H = 4;
      const [d] = await built(`abc DK=${DK} DV=${DV} M=${M}`, abcOp, {
        q: t(H * DK), k: t(H * DK, { name: 'k' }), v: t(H * DV), s: t(H * M, { name: 's' }), state: state(abcStateCols({ H, DK, DV, M }), 3), out: t(H * DV, { name: 'o' }),
        H, DK, DV, M, scale: DK ** -0.5, clampMin: -32, clampMax: 32,
      });
      expect(d!.workgroups).toEqual([4, 3, 1]);
    }
  });

  test('feature_map: every map × norm × bias × rows k', async () => {
    step([40, 29, 1], 3);
    for (const map of Object.keys(FEATURE_MAP) as FeatureMap[]) for (const DK of [64, 512]) for (const norm of [false, true]) for (const rows of ['n', 'k'] as const) {
      const L = FEATURE_LAYERS[map];
      await built(`feature_map ${map} DK=${DK} norm=${norm} rows=${rows}`, featureMapOp, {
        x: t(2 * DK, { rows }), W: L ? w([L, DK, DK]) : null, b: L ? w([L, DK]) : null, y: t(2 * DK, { rows, name: 'y' }), map, DK, norm,
      });
    }
  });
});
