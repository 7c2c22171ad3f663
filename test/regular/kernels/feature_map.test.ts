// feature_map (kernels/linear_attn/feature_map.wgsl) against feature_map.ref.ts: every map, head dims 64 and 128,
// with and without the sum normalisation (norm_q / norm_k), on 70 rows of two heads.
import { describe, test } from 'bun:test';
import { prng, randn, randu } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, simpleStep } from './harness.ts';
import { featureMap } from '../../../kernels/linear_attn/feature_map.ts';
import { FEATURE_LAYERS, FEATURE_MAP, type FeatureMap } from '../../../kernels/linear_attn/feature_map.ref.ts';

async function runCase(map: FeatureMap, DK: number, norm: boolean, bias = true): Promise<void> {
  const what = `feature_map ${map} DK=${DK}${norm ? ' norm' : ''}${bias ? '' : ' no bias'}`;
  const rng = prng(what);
  const step = simpleStep(70);
  const heads = 2, C = heads * DK, n = FEATURE_LAYERS[map];
  // positive features when normalising (as the maps used with norm_q/norm_k give), so Σ stays away from −1e−4
  const xs = norm && map !== 'elementwise_product' ? randu(70 * C, rng, 0.1, 1) : randn(70 * C, rng);
  const W = randn(Math.max(n, 1) * DK * DK, rng, DK ** -0.5), b = randn(Math.max(n, 1) * DK, rng, 0.1, norm ? 1 : 0);
  await checkBoth(step, {}, async io => {
    const x = io.o.act('x', C), y = io.o.act('y', C);
    io.put(x, xs); io.put(y);
    const w = n ? io.weight('W', hostWeight(W, [n, DK * DK]), false) : null;
    const bb = n && bias ? io.weight('b', hostWeight(b, [n, DK]), false) : null;
    await featureMap(io.o, x, w, bb, y, { map, DK, norm });
    return { y };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('feature_map', () => {
  for (const map of Object.keys(FEATURE_MAP) as FeatureMap[]) for (const DK of [64, 128])
    test(`${map} DK=${DK}`, () => runCase(map, DK, false));
  test('elementwise_product DK=64, normalised', () => runCase('elementwise_product', 64, true));
  test('elu DK=128, normalised', () => runCase('elu', 128, true));
  test('t2r DK=64 without bias, normalised', () => runCase('t2r', 64, true, false));
});
