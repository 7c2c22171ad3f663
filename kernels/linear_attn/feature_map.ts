// feature_map op (kernels/linear_attn/feature_map.wgsl): fla linear attention's per-head feature maps.
import type { Dispatch, Gpu } from '../../src/gpu/device.ts';
import { binding, dispatch, grid, type StepCtx, type View } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { FEATURE_LAYERS, FEATURE_MAP, featureMapRef, type FeatureMap } from './feature_map.ref.ts';
import source from './feature_map.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'x', 'W', 'b', 'y', 'dims'] as const;

export interface FeatureMapArgs { x: View; W: View | null; b: View | null; y: View; map: FeatureMap; heads: number; DK: number; norm: boolean; rowsK: boolean }

export function build(gpu: Gpu, s: StepCtx, a: FeatureMapArgs): Promise<Dispatch> {
  if ((FEATURE_LAYERS[a.map] > 0) !== (a.W !== null)) throw new ShapeError(`feature_map ${a.map}: weights ${a.W ? 'given' : 'missing'}`);
  const WG = Math.min(64, gpu.maxInvocations);
  const rows = a.rowsK ? s.k : s.n;
  return dispatch(gpu, {
    label: 'feature_map', source,
    defines: { DK: a.DK, WG, FM: FEATURE_MAP[a.map], HAS_BIAS: a.b !== null, NORM: a.norm, ROWS_K: a.rowsK },
  }, [{ buffer: s.uniform }, binding(a.x), a.W ? binding(a.W) : { buffer: s.dummy }, a.b ? binding(a.b) : { buffer: s.dummy }, binding(a.y),
    { buffer: gpu.uniform(new Uint32Array([a.heads])) }], grid(rows * a.heads));
}

export function cost(R: number, heads: number, DK: number, layers: number) {
  return { flops: 2 * R * heads * DK * DK * layers, bytes: 4 * (2 * R * heads * DK + layers * DK * DK) };
}

/** out = φ(x) per head of DK columns; W [n, DK, DK] and b [n, DK] f32 weights (null for the parameter-free maps). */
export async function featureMap(o: Backend, x: Tensor, W: Weight | null, b: Weight | null, out: Tensor, opts: { map: FeatureMap; DK: number; norm: boolean }): Promise<void> {
  if (x.cols % opts.DK !== 0 || out.cols !== x.cols) throw new ShapeError(`feature_map: ${x.cols} → ${out.cols} columns with head dim ${opts.DK}`);
  const heads = x.cols / opts.DK;
  if (o instanceof GpuBackend) {
    o.push(await build(o.gpu, o.step, {
      x: o.view(x), W: W ? o.weightView(W) : null, b: b ? o.weightView(b) : null, y: o.view(out),
      map: opts.map, heads, DK: opts.DK, norm: opts.norm, rowsK: x.rows === 'k',
    }));
    return;
  }
  const c = o as CpuBackend;
  featureMapRef(c.data(x), W ? c.weightData(W) : null, b ? c.weightData(b) : null, c.data(out), c.capacity(x), { map: opts.map, heads, DK: opts.DK, norm: opts.norm });
}
