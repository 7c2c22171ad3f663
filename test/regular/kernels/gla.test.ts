// gla (kernels/gla/gla_recurrent.wgsl) against gla.ref.ts: head dims 64 and 128, GQA, the GLA gate (with clamp and a
// feature map) and the ungated linear-attention form with and without the normaliser z; three sequences of lengths
// 7, 1 and 65 packed on different slots (one more slot untouched), nonzero initial state. Compares o and the state.
import { describe, test } from 'bun:test';
import { prng, randn, randu } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, packedStep } from './harness.ts';
import { gla } from '../../../kernels/gla/gla.ts';
import { glaStateCols, glaValueTile, type Fmap } from '../../../kernels/gla/gla.ref.ts';

const SLOTS = 4;

interface Case { DK: number; DV: number; H: number; HKV: number; gate: boolean; normalize?: boolean; fmap?: Fmap; clampMin?: number | null; seqs?: { slot: number; len: number }[] }

async function runCase(c: Case): Promise<void> {
  const seqs = c.seqs ?? [{ slot: 2, len: 7 }, { slot: 0, len: 1 }, { slot: 3, len: 65 }];
  const what = `gla DK=${c.DK} DV=${c.DV} H=${c.H}/${c.HKV} ${c.gate ? 'gated' : 'ungated'}${c.normalize ? ' normalize' : ''} ${c.fmap ?? 'none'} clamp=${c.clampMin ?? null} seqs ${seqs.map(s => `${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);
  const step = packedStep(seqs);
  const N = step.ids.length;
  const { H, HKV, DK, DV } = c;
  const normalize = !!c.normalize;
  const cols = glaStateCols({ H, DK, DV, normalize });
  // linear attention's maps give positive features (z sums stay away from zero); GLA's q, k are plain normals
  const pos = !c.gate;
  const qv = pos ? randu(N * H * DK, rng, 0.05, 1) : randn(N * H * DK, rng);
  const kv = pos ? randu(N * HKV * DK, rng, 0.05, 1) : randn(N * HKV * DK, rng, 0.5);
  const vv = randn(N * HKV * DV, rng);
  const gk = randn(N * HKV * DK, rng, 2, 1);   // logsigmoid(·)/16: decays in about [e^-0.4, 1)
  const state = randn(SLOTS * cols, rng, 0.3);
  const tiles = DV / glaValueTile(DV);   // z is kept once per value tile, the same in every copy
  if (normalize) for (let s = 0; s < SLOTS; s++) for (let h = 0; h < H; h++) for (let i = 0; i < DK; i++) {
    const z = rng.uniform(1, 5);
    for (let c = 0; c < tiles; c++) state[s * cols + H * DK * DV + (h * tiles + c) * DK + i] = z;
  }
  await checkBoth(step, { states: [{ key: 'S', cols }], slots: SLOTS, init: { S: state } }, async io => {
    const q = io.o.act('q', H * DK), k = io.o.act('k', HKV * DK), v = io.o.act('v', HKV * DV), g = io.o.act('gk', HKV * DK), o = io.o.act('o', H * DV);
    io.put(q, qv); io.put(k, kv); io.put(v, vv); io.put(g, gk); io.put(o);
    const st = io.o.state('S');
    await gla(io.o, {
      q, k, v, gk: c.gate ? g : null, state: st, out: o, H, HKV, DK, DV, scale: DK ** -0.5, normalize,
      gateNormalizer: 16, clampMin: c.clampMin ?? null, fmap: c.fmap ?? 'none',
    });
    return { o, state: st };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('gla', () => {
  for (const D of [64, 128]) {
    test(`DK=DV=${D}, gated`, () => runCase({ DK: D, DV: D, H: 2, HKV: 2, gate: true }));
    test(`DK=DV=${D}, ungated (linear attention)`, () => runCase({ DK: D, DV: D, H: 2, HKV: 2, gate: false }));
    test(`DK=DV=${D}, ungated with normaliser z${D > 64 ? ' (two value tiles)' : ''}`, () => runCase({ DK: D, DV: D, H: 2, HKV: 2, gate: false, normalize: true }));
  }
  test('DK=64 DV=128 (two value tiles), GQA 4/2, clamp_min, swish feature map', () =>
    runCase({ DK: 64, DV: 128, H: 4, HKV: 2, gate: true, clampMin: -0.05, fmap: 'swish' }));
  test('DK=32 DV=64 (gla-tiny shapes), relu feature map, normaliser, GQA 2/1', () =>
    runCase({ DK: 32, DV: 64, H: 2, HKV: 1, gate: false, normalize: true, fmap: 'relu' }));
  test('DK=64: decode, one token in each of four slots', () =>
    runCase({ DK: 64, DV: 64, H: 2, HKV: 2, gate: true, seqs: [{ slot: 3, len: 1 }, { slot: 1, len: 1 }, { slot: 0, len: 1 }, { slot: 2, len: 1 }] }));
});
