import { describe, expect, test } from 'bun:test';
import {
  DEFAULT_SAMPLING, Rng, Sampler, type SamplingOptions, argmax, logSoftmaxAt, validateSampling,
} from '../../../src/runtime/sample.ts';
import { UsageError } from '../../../src/util/errors.ts';

const OFF: SamplingOptions = { temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };
const opts = (o: Partial<SamplingOptions>): SamplingOptions => ({ ...OFF, seed: 1234, ...o });
const logProbs = (p: number[]) => Float32Array.from(p, Math.log);

function randomLogits(rng: Rng, V: number, scale = 4): Float32Array {
  return Float32Array.from({ length: V }, () => (rng.next() * 2 - 1) * scale);
}

/** Frequencies of n draws from one row of logits. */
function freqs(s: Sampler, logits: Float32Array, n: number, history: number[] = []): number[] {
  const c = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[s.sample(logits, history)]++;
  return c.map((x) => x / n);
}

describe('Rng', () => {
  test('uniform in [0, 1), reproducible, seed-dependent', () => {
    const a = new Rng(7), b = new Rng(7), c = new Rng(8);
    let sum = 0;
    let differs = false;
    for (let i = 0; i < 10000; i++) {
      const x = a.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      expect(b.next()).toBe(x);
      if (c.next() !== x) differs = true;
      sum += x;
    }
    expect(differs).toBe(true);
    expect(Math.abs(sum / 10000 - 0.5)).toBeLessThan(0.02);
    expect(new Rng(0).next()).not.toBe(new Rng(1).next()); // seed 0 is usable
    expect(new Rng(Number.MAX_SAFE_INTEGER).next()).not.toBe(new Rng(Number.MAX_SAFE_INTEGER - 1).next());
  });
});

describe('argmax / logSoftmaxAt', () => {
  test('argmax: first index wins ties; offset and length are a row', () => {
    expect(argmax(Float32Array.of(1, 3, 3, 2))).toBe(1);
    expect(argmax(Float32Array.of(9, 9, 0, 5, 5, 1), 2, 4)).toBe(1);
    expect(argmax(Float32Array.of(-Infinity, -Infinity))).toBe(0);
  });

  test('logSoftmaxAt matches a direct f64 computation', () => {
    const rng = new Rng(3);
    const V = 257, rows = 3;
    const x = randomLogits(rng, V * rows, 10);
    for (let r = 0; r < rows; r++) {
      let z = 0;
      for (let i = 0; i < V; i++) z += Math.exp(x[r * V + i]!);
      for (const i of [0, 5, 100, V - 1]) {
        const direct = Math.log(Math.exp(x[r * V + i]!) / z);
        expect(Math.abs(logSoftmaxAt(x, r * V, V, i) - direct)).toBeLessThan(1e-9);
      }
    }
  });

  test('logSoftmaxAt is stable for large logits', () => {
    const x = Float32Array.of(1000, 1000, 990);
    expect(logSoftmaxAt(x, 0, 3, 0)).toBeCloseTo(-Math.log(2 + Math.exp(-10)), 9);
    expect(logSoftmaxAt(x, 0, 3, 2)).toBeCloseTo(-10 - Math.log(2 + Math.exp(-10)), 9);
    expect(() => logSoftmaxAt(x, 0, 3, 3)).toThrow(RangeError);
  });
});

describe('Sampler', () => {
  test('temperature 0 is argmax and ignores the seed', () => {
    const rng = new Rng(11);
    for (let t = 0; t < 50; t++) {
      const x = randomLogits(rng, 1000);
      expect(new Sampler(opts({ temperature: 0, seed: t })).sample(x, [])).toBe(argmax(x));
    }
    expect(new Sampler(opts({ temperature: 0 })).sample(Float32Array.of(0, 2, 2), [])).toBe(1);
  });

  test('same seed, same ids; different seeds differ', () => {
    const run = (seed: number) => {
      const s = new Sampler({ ...DEFAULT_SAMPLING, topK: 0, minP: 0, seed });
      const rng = new Rng(99);
      const ids: number[] = [];
      for (let t = 0; t < 200; t++) ids.push(s.sample(randomLogits(rng, 500, 2), ids));
      return ids;
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  test('without a seed, one is drawn and exposed', () => {
    const a = new Sampler(OFF), b = new Sampler(OFF);
    expect(Number.isSafeInteger(a.seed) && a.seed >= 0).toBe(true);
    expect(a.seed).not.toBe(b.seed);
  });

  test('temperature 1 draws from softmax(logits)', () => {
    const p = [0.1, 0.2, 0.3, 0.4];
    const f = freqs(new Sampler(opts({})), logProbs(p), 20000);
    for (let i = 0; i < 4; i++) expect(Math.abs(f[i]! - p[i]!)).toBeLessThan(0.015);
  });

  test('temperature 2 draws from softmax(logits / 2)', () => {
    const p = [0.1, 0.2, 0.3, 0.4];
    const q = p.map(Math.sqrt);
    const z = q.reduce((a, b) => a + b);
    const f = freqs(new Sampler(opts({ temperature: 2 })), logProbs(p), 20000);
    for (let i = 0; i < 4; i++) expect(Math.abs(f[i]! - q[i]! / z)).toBeLessThan(0.015);
  });

  test('top-k 1 is greedy', () => {
    const rng = new Rng(5);
    const s = new Sampler(opts({ topK: 1 }));
    for (let t = 0; t < 50; t++) {
      const x = randomLogits(rng, 3000, 1);
      expect(s.sample(x, [])).toBe(argmax(x));
    }
  });

  test('top-k 2 renormalises over the two best; ties keep lower ids', () => {
    const f = freqs(new Sampler(opts({ topK: 2 })), logProbs([0.1, 0.3, 0.2, 0.4]), 20000);
    expect(f[0]).toBe(0);
    expect(f[2]).toBe(0);
    expect(Math.abs(f[3]! - 4 / 7)).toBeLessThan(0.015);
    const g = freqs(new Sampler(opts({ topK: 2 })), Float32Array.of(1, 1, 1, 1, 1), 2000);
    expect(g.slice(2)).toEqual([0, 0, 0]);
    expect(g[0]! > 0.4 && g[1]! > 0.4).toBe(true);
  });

  test('top-p keeps the minimal set', () => {
    const x = logProbs([0.05, 0.5, 0.15, 0.3]);
    const f = freqs(new Sampler(opts({ topP: 0.75 })), x, 20000); // 0.5 < 0.75 <= 0.8: ids 1 and 3
    expect(f[0]).toBe(0);
    expect(f[2]).toBe(0);
    expect(Math.abs(f[1]! - 0.5 / 0.8)).toBeLessThan(0.015);
    const g = freqs(new Sampler(opts({ topP: 0.9 })), x, 20000); // 0.95 needs id 2 too
    expect(g[0]).toBe(0);
    expect(g[2]).toBeGreaterThan(0.1);
    expect(freqs(new Sampler(opts({ topP: 0.01 })), x, 500)).toEqual([0, 1, 0, 0]); // always keeps one
  });

  test('top-p combined with top-k measures mass after top-k', () => {
    // After top-k 3 the probs are 0.5/0.95, 0.3/0.95, 0.15/0.95; top-p 0.8 needs 0.842 -> ids 1 and 3.
    const x = logProbs([0.05, 0.5, 0.15, 0.3]);
    const f = freqs(new Sampler(opts({ topK: 3, topP: 0.8 })), x, 5000);
    expect(f[0]).toBe(0);
    expect(f[2]).toBe(0);
  });

  test('min-p drops tokens below minP * maxP', () => {
    const x = logProbs([0.5, 0.3, 0.15, 0.05]);
    const f = freqs(new Sampler(opts({ minP: 0.2 })), x, 20000); // threshold 0.1: id 3 goes
    expect(f[3]).toBe(0);
    expect(Math.abs(f[2]! - 0.15 / 0.95)).toBeLessThan(0.015);
    expect(freqs(new Sampler(opts({ minP: 0.7 })), x, 500)).toEqual([1, 0, 0, 0]);
    // top-p then min-p: the smaller of the two sets wins.
    const g = freqs(new Sampler(opts({ minP: 0.2, topP: 0.7 })), x, 5000);
    expect(g[2]).toBe(0);
    expect(g[3]).toBe(0);
  });

  test('repetition penalty can change the argmax', () => {
    const greedy = (o: Partial<SamplingOptions>, x: Float32Array, h: number[]) =>
      new Sampler(opts({ temperature: 0, ...o })).sample(x, h);
    const x = Float32Array.of(2.0, 1.9, -1);
    expect(greedy({}, x, [0])).toBe(0);
    expect(greedy({ repetitionPenalty: 1.2 }, x, [0])).toBe(1); // 2/1.2 < 1.9
    expect(greedy({ repetitionPenalty: 1.2 }, Float32Array.of(-1, -1.1), [0])).toBe(1); // -1*1.2 < -1.1
    // Distinct ids only: three 0s penalise once (2/1.2 = 1.67 > 1.6).
    expect(greedy({ repetitionPenalty: 1.2 }, Float32Array.of(2.0, 1.6), [0, 0, 0])).toBe(0);
    expect(greedy({ repetitionPenalty: 1.2 }, x, [99, -1])).toBe(0); // out-of-range history is ignored
    expect(Array.from(x)).toEqual([2.0, 1.899999976158142, -1]); // input untouched
  });

  test('repetition penalty applies in sampled mode too', () => {
    const x = logProbs([0.5, 0.5]);
    const f = freqs(new Sampler(opts({ repetitionPenalty: 2 })), x, 20000, [0]);
    // log 0.5 < 0: logit doubled -> p0 = 0.25 / 0.75
    expect(Math.abs(f[0]! - 1 / 3)).toBeLessThan(0.015);
  });

  test('temperatures below ~1e-38 are greedy, not a draw among logits that overflowed f32', () => {
    const rows = [Float32Array.of(3, 5, 4.9, -2), Float32Array.of(-7, -1, -1.5), Float32Array.of(1e30, 2e30, -Infinity, NaN)];
    for (const t of [1e-37, 1e-39, 1e-45, Number.MIN_VALUE])
      for (const x of rows)
        for (const o of [{}, { topK: 2 }, { topP: 0.5 }, { minP: 0.1 }])
          expect({ t, x: [...x], o, id: new Sampler(opts({ temperature: t, ...o })).sample(x, []) }).toEqual({ t, x: [...x], o, id: argmax(x) });
  });

  test('NaN and -Infinity logits are never drawn', () => {
    const x = Float32Array.of(NaN, 0, -Infinity, 0, NaN);
    const f = freqs(new Sampler(opts({})), x, 2000);
    expect(f[0] + f[2]! + f[4]!).toBe(0);
    expect(freqs(new Sampler(opts({ topK: 3 })), x, 500)[0]).toBe(0);
  });

  test('large vocabulary with top-k is fast', () => {
    const rng = new Rng(1);
    const x = randomLogits(rng, 152064, 8);
    const s = new Sampler({ ...DEFAULT_SAMPLING, seed: 1 });
    const hist = Array.from({ length: 500 }, (_, i) => i * 7);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) s.sample(x, hist);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

describe('validateSampling', () => {
  test('fills defaults', () => {
    expect(validateSampling({})).toEqual({ ...DEFAULT_SAMPLING });
    expect(validateSampling({ temperature: 0, seed: 5 })).toEqual({ ...DEFAULT_SAMPLING, temperature: 0, seed: 5 });
    expect(validateSampling({ topP: 1, minP: 0, topK: 0 }).topP).toBe(1);
  });

  const bad: [Partial<SamplingOptions>, string][] = [
    [{ temperature: -0.1 }, '--temperature'],
    [{ temperature: NaN }, '--temperature'],
    [{ temperature: Infinity }, '--temperature'],
    [{ topK: -1 }, '--top-k'],
    [{ topK: 1.5 }, '--top-k'],
    [{ topP: 0 }, '--top-p'],
    [{ topP: 2 }, '--top-p'],
    [{ topP: NaN }, '--top-p'],
    [{ minP: -0.1 }, '--min-p'],
    [{ minP: 1.5 }, '--min-p'],
    [{ repetitionPenalty: 0 }, '--repetition-penalty'],
    [{ repetitionPenalty: -1 }, '--repetition-penalty'],
    [{ repetitionPenalty: Infinity }, '--repetition-penalty'],
    [{ seed: -1 }, '--seed'],
    [{ seed: 1.5 }, '--seed'],
    [{ seed: 2 ** 53 }, '--seed'],
    [{ topK: 'abc' as unknown as number }, '--top-k'],
  ];
  for (const [o, flag] of bad) {
    test(`rejects ${Object.keys(o)[0]}=${String(Object.values(o)[0])}`, () => {
      let err: unknown;
      try {
        validateSampling(o);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      const msg = (err as Error).message;
      expect(msg.startsWith(flag + ' ')).toBe(true);
      expect(msg).not.toContain('\n');
      expect((err as UsageError).exitCode).toBe(2);
    });
  }

  test('the top-p message', () => {
    expect(() => validateSampling({ topP: 2 })).toThrow('--top-p must be in (0, 1], got 2');
  });

  test('Sampler validates its options', () => {
    expect(() => new Sampler({ ...OFF, topP: 0 })).toThrow(UsageError);
  });
});
