// argmax (kernels/sample): greedy token choice on the GPU against the CPU reference and against the host
// sampler at temperature 0 (src/runtime/sample.ts), exactly: vocabularies around the segment size (1024 values)
// ties (the lowest id wins), NaN (never chosen), ±Inf, an all −∞ row, the non-finite flag.
import { describe, expect, test } from 'bun:test';
import { argmax } from '../../../kernels/sample/argmax.ts';
import { argmaxRef } from '../../../kernels/sample/argmax.ref.ts';
import { Sampler } from '../../../src/runtime/sample.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { gpuBackend, runOn, simpleStep } from './harness.ts';

/** K rows of V logits; row kinds by index: random, ties at the max, NaN/Inf sprinkled, all −∞, +Inf twice. */
function logitsFor(K: number, V: number, tag: string): Float32Array {
  const rng = prng(`argmax ${tag} ${K}×${V}`);
  const l = randn(K * V, rng, 3);
  for (let r = 0; r < K; r++) {
    const row = l.subarray(r * V, (r + 1) * V);
    const pick = () => Math.floor(rng.next() * V);
    switch (r % 5) {
      case 1: { const m = 50; row[pick()] = m; row[pick()] = m; row[pick()] = m; break; }
      case 2: { row[pick()] = NaN; row[pick()] = -Infinity; row[pick()] = 40; if (V > 3) row[0] = NaN; break; }
      case 3: row.fill(-Infinity); if (V > 2) row[1] = NaN; break;
      case 4: row[pick()] = Infinity; row[pick()] = Infinity; break;
    }
  }
  return l;
}

async function gpuArgmax(l: Float32Array, K: number, V: number): Promise<{ out: Float32Array; ids: Uint32Array }> {
  const step = simpleStep(K + 2, Array.from({ length: K }, (_, j) => (j * 3 + 1) % (K + 2)));
  const res = await runOn(gpuBackend(), 'gpu', step, {}, async io => {
    const lt = io.o.act('logits', V, { rows: 'k' }), out = io.o.act('out', 2, { rows: 'k' }), ids = io.o.act('ids', 1, { rows: 'k' });
    io.put(lt, l);
    io.put(out);
    io.put(ids, new Float32Array(K).fill(NaN));
    await argmax(io.o, lt, out, ids);
    return { out, ids };
  });
  const d = res.ids!.data;
  return { out: res.out!.data, ids: new Uint32Array(d.buffer, d.byteOffset, K) };
}

const CASES: [number, number][] = [[1, 1], [5, 7], [5, 1023], [5, 1024], [5, 1025], [3, 50257], [2, 151936], [1, 300007]];

describe.skipIf(!HAS_GPU)('argmax', () => {
  for (const [K, V] of CASES) {
    test(`K=${K} V=${V}`, async () => {
      const l = logitsFor(K, V, 'gpu');
      const { out: got, ids } = await gpuArgmax(l, K, V);
      const want = argmaxRef(l, K, V);
      for (let r = 0; r < K; r++) {
        const row = l.subarray(r * V, (r + 1) * V);
        const host = new Sampler({ temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 }).sample(row, []);
        expect([got[2 * r], got[2 * r + 1], ids[r]]).toEqual([want.ids[r], want.nonFinite[r], want.ids[r]]);
        expect(want.ids[r]).toBe(host);
        expect(want.nonFinite[r]).toBe(row.some(v => !Number.isFinite(v)) ? 1 : 0);
      }
    }, 300_000);
  }
});
