// feature_map op (kernels/linear_attn/feature_map.wgsl): fla linear attention's per-head feature maps.
import type { Backend, Tensor, Weight } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, rowsOf, u32 } from '../lib.ts';
import { FEATURE_LAYERS, FEATURE_MAP, featureMapRef, type FeatureMap } from './feature_map.ref.ts';
import source from './feature_map.wgsl' with { type: 'text' };

export const KERNEL = kernel('feature_map', source, ['step', 'x', 'W', 'b', 'y', 'dims']);

/** W [n, DK, DK] and b [n, DK] f32 weights (null for the parameter-free maps). */
export interface FeatureMapArgs { x: Tensor; W: Weight | null; b: Weight | null; y: Tensor; map: FeatureMap; DK: number; norm: boolean }

export const featureMapOp = op<FeatureMapArgs>({
  name: 'feature_map',
  check(a) {
    if (a.x.cols % a.DK !== 0 || a.y.cols !== a.x.cols) throw new ShapeError(`feature_map: ${a.x.cols} → ${a.y.cols} columns with head dim ${a.DK}`);
    if ((FEATURE_LAYERS[a.map] > 0) !== (a.W !== null)) throw new ShapeError(`feature_map ${a.map}: weights ${a.W ? 'given' : 'missing'}`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const heads = a.x.cols / a.DK;
        return [{
          kernel: KERNEL, grid: grid(rowsOf(a.x, c) * heads),
          defines: { DK: a.DK, WG: Math.min(64, c.adapter.maxInvocations), FM: FEATURE_MAP[a.map], HAS_BIAS: a.b !== null, NORM: a.norm, ROWS_K: a.x.rows === 'k' },
          bind: { x: a.x, W: a.W, b: a.b, y: a.y, dims: u32(heads) },
        }];
      },
    },
  },
  ref: (a, h) => featureMapRef(h.data(a.x), a.W ? h.data(a.W) : null, a.b ? h.data(a.b) : null, h.data(a.y), h.cap(a.x),
    { map: a.map, heads: a.x.cols / a.DK, DK: a.DK, norm: a.norm }),
});

export function cost(R: number, heads: number, DK: number, layers: number) {
  return { flops: 2 * R * heads * DK * DK * layers, bytes: 4 * (2 * R * heads * DK + layers * DK * DK) };
}

/** out = φ(x) per head of DK columns; W [n, DK, DK] and b [n, DK] f32 weights (null for the parameter-free maps). */
export function featureMap(o: Backend, x: Tensor, W: Weight | null, b: Weight | null, out: Tensor, opts: { map: FeatureMap; DK: number; norm: boolean }): Promise<void> {
  return o.run(featureMapOp, { x, W, b, y: out, ...opts });
}
