// sample (kernels/sample): temperature / top-k / top-p / min-p / repetition penalty and the seeded Gumbel-max draw
// on the GPU against the CPU reference (same token, except where two candidates' Gumbel scores tie to f32 rounding),
// the reference's candidate set against the host Sampler's (src/runtime/sample.ts), temperature 0 against argmax,
// same-seed reproducibility, and a chi-square test that the device's draws follow the filtered softmax.
import { describe, expect, test } from 'bun:test';
import { argmaxRef } from '../../../kernels/sample/argmax.ref.ts';
import { sample } from '../../../kernels/sample/sample.ts';
import { encodeRow, expo, paramCols, sampleRow, type SampleRow } from '../../../kernels/sample/sample.ref.ts';
import { Sampler, type SamplingOptions } from '../../../src/runtime/sample.ts';
import { prng, randn, type Prng } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { gpuBackend, runOn, simpleStep } from './harness.ts';

type Opts = Omit<SampleRow, 'seed' | 'step' | 'history'>;
const o = (temperature: number, topK: number, topP: number, minP: number, repetitionPenalty = 1): Opts => ({ temperature, topK, topP, minP, repetitionPenalty });

/**
 * Settings cycled over the rows: the defaults, each filter alone and at its edges, penalties, greedy; both of the
 * kernel's paths (the fast path when top-k or min-p bounds the candidates to ≤ 1024 tokens, else the searches).
 */
const SETTINGS: Opts[] = [
  o(0.8, 40, 0.95, 0.05),
  o(1, 0, 1, 0),            // plain softmax over the whole vocabulary
  o(1, 1, 1, 0),            // k = 1
  o(1, 0, 1e-6, 0),         // p → 0: the top token
  o(1, 0, 1, 1),            // min-p 1: the tokens at the maximum
  o(1.7, 0, 0.9, 0),        // a wide nucleus (top-p threshold search over most of the vocabulary)
  o(0.7, 5, 0.8, 0.2, 1.3), // penalty on the history
  o(1, 3, 1, 0.999),        // min-p just below 1
  o(0.5, 0, 0.95, 0, 0.8),  // penalty < 1 raises the history
  o(0, 0, 1, 0, 1.3),       // greedy on penalised logits
  o(0, 0, 1, 0),            // greedy: argmax
  o(2, 17, 0.99, 0.01),
  o(1, 2000, 0.97, 0),      // more top-k tokens than the fast path holds (1024): the threshold searches
  o(0.9, 900, 1, 1e-4),     // the fast path near its capacity
];

/** K rows of V logits; kinds by row: random, ties (quantised values), NaN/Inf sprinkled, all −∞ but one, +Inf. */
function logitsFor(K: number, V: number, rng: Prng): Float32Array {
  const l = randn(K * V, rng, 3);
  for (let r = 0; r < K; r++) {
    const row = l.subarray(r * V, (r + 1) * V);
    const pick = () => rng.int(V);
    switch (r % 7) {
      case 1: for (let i = 0; i < V; i++) row[i] = Math.round(row[i]! * 2) / 2; break;   // many ties, also at the k-th
      case 2: row[pick()] = NaN; row[pick()] = -Infinity; if (V > 3) row[0] = NaN; break;
      case 3: { const keep = pick(); for (let i = 0; i < V; i++) if (i !== keep && i % 3 !== 0) row[i] = -Infinity; break; }
      case 4: if (V > 1) row[pick()] = Infinity; break;
      case 5: row[pick()] = 50; row[pick()] = 50; break;
    }
  }
  return l;
}

function history(V: number, rng: Prng): number[] {
  const n = 1 + rng.int(40), seen = new Set<number>();
  for (let i = 0; i < n; i++) seen.add(rng.int(Math.max(1, Math.min(V, 60))));   // low ids: often among the best
  return [...seen];
}

function rowsFor(K: number, V: number, rng: Prng, settings = SETTINGS, shift = 0): SampleRow[] {
  return Array.from({ length: K }, (_, r) => ({ ...settings[(r + shift) % settings.length]!, seed: rng.int(2 ** 31) * 4096 + rng.int(4096), step: rng.int(2 ** 32), history: history(V, rng) }));
}

function encode(rows: SampleRow[]): { P: number; params: Float32Array } {
  const P = Math.max(...rows.map(s => paramCols(s.repetitionPenalty !== 1 ? s.history!.length : 0)));
  const params = new Float32Array(rows.length * P);
  rows.forEach((s, r) => encodeRow(params, r * P, P, s));
  return { P, params };
}

async function gpuSample(l: Float32Array, params: Float32Array, K: number, V: number, P: number): Promise<Float32Array> {
  const step = simpleStep(K + 2, Array.from({ length: K }, (_, j) => (j * 3 + 1) % (K + 2)));
  const res = await runOn(gpuBackend(), 'gpu', step, {}, async io => {
    const lt = io.o.act('logits', V, { rows: 'k' }), pt = io.o.act('params', P, { rows: 'k' });
    const out = io.o.act('out', 2, { rows: 'k' }), ids = io.o.act('ids', 1, { rows: 'k' });
    io.put(lt, l);
    io.put(pt, params);
    io.put(out);
    io.put(ids);
    await sample(io.o, lt, pt, out, ids);
    return { out, ids };
  });
  const out = res.out!.data, ids = new Uint32Array(res.ids!.data.buffer, res.ids!.data.byteOffset, K);
  for (let r = 0; r < K; r++) expect(ids[r]).toBe(out[2 * r]!);   // the feed ids are the chosen ids
  return out;
}

/** The host Sampler's candidates for one row (its draw forced to the last candidate), finite-logit ids only; null when greedy. */
function hostCandidates(row: Float32Array, s: SampleRow): number[] | null {
  const opts: SamplingOptions = { temperature: s.temperature, topK: s.topK, topP: s.topP, minP: s.minP, repetitionPenalty: s.repetitionPenalty, seed: 1 };
  const sm = new Sampler(opts);
  (sm as unknown as { rng: { next(): number } }).rng = { next: () => 1 - 2 ** -40 };
  const id = sm.sample(row, s.history ?? []);
  const idx = (sm as unknown as { idx: Int32Array }).idx;
  const pos = idx.indexOf(id);
  if (s.temperature === 0 || pos < 0) return null;
  return [...idx.subarray(0, pos + 1)].filter(i => row[i]! > -Infinity).sort((a, b) => a - b);
}

const CASES: [number, number][] = [[1, 1], [12, 7], [12, 255], [12, 256], [12, 257], [24, 1000], [7, 50257], [14, 151936]];

describe.skipIf(!HAS_GPU)('sample', () => {
  for (const [K, V] of CASES) {
    test(`K=${K} V=${V}: device = reference; reference candidates = host Sampler's`, async () => {
      const rng = prng(`sample ${K}×${V}`);
      const l = logitsFor(K, V, rng), rows = rowsFor(K, V, rng, SETTINGS, V % SETTINGS.length);
      const { P, params } = encode(rows);
      const got = await gpuSample(l, params, K, V, P);
      let nearTies = 0;
      for (let r = 0; r < K; r++) {
        const row = l.subarray(r * V, (r + 1) * V), s = rows[r]!;
        const want = sampleRow(l, r * V, V, params.subarray(r * P, (r + 1) * P));
        const why = `row ${r} (${JSON.stringify({ ...s, history: undefined })}) ${rng.describe()}`;
        expect(got[2 * r + 1], why).toBe(want.nonFinite);
        expect(want.nonFinite).toBe(row.some(v => !Number.isFinite(v)) ? 1 : 0);
        if (got[2 * r] !== want.id) {
          // only a tie of Gumbel scores to f32 rounding may pick another candidate
          const j = want.cand ? [...want.cand].indexOf(got[2 * r]!) : -1;
          expect(j, `${why}: device drew ${got[2 * r]}, not a candidate (reference ${want.id})`).toBeGreaterThanOrEqual(0);
          const best = want.score![[...want.cand!].indexOf(want.id)]!;
          expect(Math.abs(want.score![j]! - best), why).toBeLessThan(1e-4 * Math.max(1, Math.abs(best)));
          nearTies++;
        }
        // greedy rows: the argmax of the (penalised) logits, as the host
        if (s.temperature === 0 && s.repetitionPenalty === 1) expect(want.id).toBe(argmaxRef(row, 1, V).ids[0]!);
        const host = hostCandidates(row, s);
        if (want.cand === null) {
          // greedy (T = 0, or m not finite): the host's choice exactly
          expect(want.id, why).toBe(new Sampler({ ...s, seed: 1 }).sample(row, s.history ?? []));
        } else {
          expect(host, why).not.toBeNull();
          expect([...want.cand].filter(i => row[i]! > -Infinity).sort((a, b) => a - b), why).toEqual(host!);
        }
      }
      expect(nearTies).toBeLessThanOrEqual(Math.ceil(K / 50));
    }, 300_000);
  }

  test('same seed and step: the same tokens; another step or seed: others', async () => {
    const K = 64, V = 3000, rng = prng('sample repro');
    const base = randn(V, rng, 2);
    const l = new Float32Array(K * V);
    for (let r = 0; r < K; r++) l.set(base, r * V);
    const rows = Array.from({ length: K }, (_, r) => ({ ...o(1.2, 0, 1, 0), seed: 12345 + (r % 2) * 2 ** 40, step: r >> 1 }));
    const { P, params } = encode(rows);
    const a = await gpuSample(l, params, K, V, P), b = await gpuSample(l, params, K, V, P);
    expect([...a]).toEqual([...b]);
    const ids = (x: Float32Array) => Array.from({ length: K }, (_, r) => x[2 * r]!);
    // each row equals its reference draw; different (seed, step) keys give (almost all) different tokens
    ids(a).forEach((id, r) => expect(id).toBe(sampleRow(l, r * V, V, params.subarray(r * P, (r + 1) * P)).id));
    expect(new Set(ids(a)).size).toBeGreaterThan(K / 2);
  }, 300_000);

  test('the draws follow the filtered softmax (chi-square), and not the unfiltered one', async () => {
    const V = 300, K = 512, calls = 8, rng = prng('sample chi2');
    const base = randn(V, rng, 1.5);
    const l = new Float32Array(K * V);
    for (let r = 0; r < K; r++) l.set(base, r * V);
    const s: Opts = o(0.9, 40, 0.9, 0.02, 1.2);
    const hist = [3, 17, 42, 99];
    const counts = new Float64Array(V);
    for (let c = 0; c < calls; c++) {
      const rows = Array.from({ length: K }, (_, r) => ({ ...s, seed: 777, step: c * K + r, history: hist }));
      const { P, params } = encode(rows);
      const got = await gpuSample(l, params, K, V, P);
      for (let r = 0; r < K; r++) counts[got[2 * r]!]!++;
    }
    const { P, params } = encode([{ ...s, seed: 777, step: 0, history: hist }]);
    const ref = sampleRow(l, 0, V, params);
    const cand = [...ref.cand!];
    expect(cand.length).toBeGreaterThan(5);
    // expected: softmax of y over the candidates (y from the reference's own penalised, scaled logits)
    const p1 = new Float32Array(params);
    const yOf = (i: number) => { const v = hist.includes(i) ? (base[i]! > 0 ? base[i]! * p1[13]! : base[i]! * 1.2) : base[i]!; return Math.fround(Math.fround(v) * p1[0]!); };
    const chi2 = (support: number[]) => {
      const ws = support.map(i => Math.exp(yOf(i))), z = ws.reduce((a, b) => a + b, 0), n = K * calls;
      let x = 0, inside = 0;
      support.forEach((i, j) => { const e = (n * ws[j]!) / z; x += (counts[i]! - e) ** 2 / e; inside += counts[i]!; });
      return { x, outside: n - inside, dof: support.length - 1 };
    };
    const good = chi2(cand);
    expect(good.outside).toBe(0);
    const limit = (dof: number) => dof + 6 * Math.sqrt(2 * dof) + 10;   // far in the tail (p < 1e-6)
    expect(good.x).toBeLessThan(limit(good.dof));
    // the same statistic on the whole vocabulary's softmax: the filtered-out mass makes it fail
    const bad = chi2(Array.from({ length: V }, (_, i) => i));
    expect(bad.x).toBeGreaterThan(limit(bad.dof));
  }, 300_000);
});

describe('sample reference', () => {
  test('expo: an Exp(1) variate on both branches, continuous at u = ½', () => {
    expect(Math.abs(expo((0x7fffff << 8) >>> 0) - expo((0x800000 << 8) >>> 0))).toBeLessThan(1e-6);
    expect(expo((0xffffff << 8) >>> 0)).toBeCloseTo(0.5 / 16777216, 12);
    let mean = 0;
    const n = 1 << 16;
    for (let i = 0; i < n; i++) mean += expo(((i * 256 + 128) << 8) >>> 0) / n;
    expect(mean).toBeCloseTo(1, 3);
  });

  test('reference draws follow the filtered softmax over many steps (chi-square)', () => {
    const V = 64, rng = prng('sample ref chi2');
    const base = randn(V, rng, 1);
    const s = { ...o(1, 0, 0.8, 0), seed: 99 };
    const counts = new Float64Array(V), n = 20000;
    let cand: number[] = [];
    for (let t = 0; t < n; t++) {
      const { params } = encode([{ ...s, step: t }]);
      const r = sampleRow(base, 0, V, params);
      counts[r.id]!++;
      cand = [...r.cand!];
    }
    const ws = cand.map(i => Math.exp(base[i]!)), z = ws.reduce((a, b) => a + b, 0);
    let x = 0, inside = 0;
    cand.forEach((i, j) => { const e = (n * ws[j]!) / z; x += (counts[i]! - e) ** 2 / e; inside += counts[i]!; });
    expect(inside).toBe(n);
    const dof = cand.length - 1;
    expect(x).toBeLessThan(dof + 6 * Math.sqrt(2 * dof) + 10);
  }, 300_000);
});
