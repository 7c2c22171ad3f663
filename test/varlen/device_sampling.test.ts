// Sampling on the GPU (kernels/sample/sample.ts through Engine.runArgmax rows, generate, the scheduler): each token
// generate() draws is the reference's draw (sample.ref.ts) on the model's own logits at that step; pipelined equals
// serial; a seed reproduces its tokens; the scheduler's batched draws equal serial generate() with the same seeds;
// the CPU backend and FLA_HOST_SAMPLING=1 keep the host Sampler.
import { afterEach, describe, expect, test } from 'bun:test';
import { encodeRow, paramCols, sampleRow, type SampleRow } from '../../kernels/sample/sample.ref.ts';
import type { Engine } from '../../src/runtime/engine.ts';
import { generate, type GenerateOptions } from '../../src/runtime/generate.ts';
import { Sampler, validateSampling, type SamplingOptions } from '../../src/runtime/sample.ts';
import { Scheduler } from '../../src/runtime/scheduler.ts';
import { fixture } from '../helpers/fixtures.ts';
import { HAS_GPU } from '../helpers/gpu.ts';
import { engine } from '../helpers/model.ts';

const FIXTURES = ['llama-tiny', 'rwkv7-tiny'] as const;
const PROMPT = [5, 17, 42, 9, 120, 33];
const HOT = validateSampling({ temperature: 1.3, topK: 0, topP: 0.95, minP: 0, seed: 7 });
const PEN = validateSampling({ temperature: 0.9, topK: 30, topP: 0.9, minP: 0.02, repetitionPenalty: 1.3, seed: 11 });

afterEach(() => { delete process.env.FLA_PIPELINE; delete process.env.FLA_HOST_SAMPLING; });

async function gen(e: Engine, sampling: SamplingOptions, o: Partial<GenerateOptions> = {}, pipeline = true): Promise<number[]> {
  if (pipeline) delete process.env.FLA_PIPELINE; else process.env.FLA_PIPELINE = '0';
  const it = generate(e, null, PROMPT, { maxTokens: 20, sampling, ...o });
  const ids: number[] = [];
  for (let r = await it.next(); !r.done; r = await it.next()) if (r.value.id !== null) ids.push(r.value.id);
  return ids;
}

/** Counts Engine.run calls (logits read back) from now on. */
function countRuns(e: Engine): () => number {
  const run = e.run.bind(e);
  let n = 0;
  e.run = seqs => { n++; return run(seqs); };
  return () => { const k = n; e.run = run; return k; };
}

/** Replays `ids` on the engine and checks each was the reference's draw from that step's logits. */
async function expectReferenceDraws(e: Engine, s: SamplingOptions, ids: number[]): Promise<void> {
  const slot = e.acquire();
  try {
    let [logits] = await e.run([{ slot, tokens: PROMPT }]);
    const seen: number[] = [];
    for (const id of PROMPT) if (!seen.includes(id)) seen.push(id);
    for (let t = 0; t < ids.length; t++) {
      const row: SampleRow = { ...s, seed: s.seed!, step: t, history: seen };
      const P = paramCols(s.repetitionPenalty !== 1 ? seen.length : 0), p = new Float32Array(P);
      encodeRow(p, 0, P, row);
      const want = sampleRow(logits!, 0, e.vocab, p);
      if (want.id !== ids[t]) {   // only a Gumbel-score tie to f32 rounding may differ
        const c = [...want.cand!], j = c.indexOf(ids[t]!);
        expect(j, `step ${t}: drew ${ids[t]}, not a candidate`).toBeGreaterThanOrEqual(0);
        expect(Math.abs(want.score![j]! - want.score![c.indexOf(want.id)]!)).toBeLessThan(1e-4);
      }
      if (!seen.includes(ids[t]!)) seen.push(ids[t]!);
      [logits] = await e.run([{ slot, tokens: [ids[t]!] }]);
    }
  } finally { e.release(slot); }
}

for (const name of FIXTURES) {
  const dir = fixture(name);
  describe.skipIf(!dir || !HAS_GPU)(`device sampling ${name}`, () => {
    test('generate draws the reference token at every step; pipelined = serial; a seed repeats', async () => {
      const e = engine(dir!, 'gpu', 2, 64);
      expect(e.deviceSampling).toBe(true);
      const runs = countRuns(e), fedCall = e.runArgmaxFed.bind(e);
      let fed = 0;
      e.runArgmaxFed = (slots, rows) => { fed++; return fedCall(slots, rows); };
      const piped = await gen(e, HOT);
      expect(fed).toBeGreaterThan(10);   // it ran ahead
      e.runArgmaxFed = fedCall;
      const serial = await gen(e, HOT, {}, false);
      expect(runs()).toBe(0);   // no logits came back
      expect(piped).toEqual(serial);
      expect(piped.length).toBe(20);
      expect(await gen(e, HOT)).toEqual(piped);
      expect(await gen(e, { ...HOT, seed: 8 })).not.toEqual(piped);
      await expectReferenceDraws(e, HOT, piped);
      // a repetition penalty: the history goes with each step (serial)
      const pen = await gen(e, PEN);
      await expectReferenceDraws(e, PEN, pen);
    }, 300_000);

    test('temperature 0 with a penalty: the host Sampler\'s greedy tokens', async () => {
      const e = engine(dir!, 'gpu', 2, 64);
      const s = validateSampling({ temperature: 0, repetitionPenalty: 1.5 });
      const dev = await gen(e, s);
      process.env.FLA_HOST_SAMPLING = '1';
      expect(e.deviceSampling).toBe(false);
      expect(await gen(e, s)).toEqual(dev);
    }, 300_000);

    test('FLA_HOST_SAMPLING=1 samples on the host (its RNG: the host Sampler\'s draws)', async () => {
      const e = engine(dir!, 'gpu', 2, 64);
      process.env.FLA_HOST_SAMPLING = '1';
      const host = await gen(e, HOT, { maxTokens: 8 });
      // replay with the host Sampler on the same logits
      const slot = e.acquire(), sm = new Sampler(HOT), hist = [...PROMPT];
      let [logits] = await e.run([{ slot, tokens: PROMPT }]);
      for (const id of host) {
        expect(sm.sample(logits!, hist)).toBe(id);
        hist.push(id);
        [logits] = await e.run([{ slot, tokens: [id] }]);
      }
      e.release(slot);
    }, 300_000);

    test('the scheduler\'s batched device draws equal serial generate() with the same seeds', async () => {
      const e = engine(dir!, 'gpu', 3, 64);
      const settings = [HOT, PEN, { ...HOT, seed: 99, topK: 5 }, validateSampling({ temperature: 0 })];
      const serial: number[][] = [];
      for (const s of settings) serial.push(await gen(e, s, { maxTokens: 12 }, false));
      const sch = new Scheduler(e, null, { eosIds: [] });
      const runs = countRuns(e);
      const got = await Promise.all(settings.map(s => sch.submit({ prompt: PROMPT, maxTokens: 12, sampling: s }).result));
      expect(got.map(g => g.ids)).toEqual(serial);
      expect(runs()).toBe(0);
    }, 300_000);
  });

  describe.skipIf(!dir)(`host sampling on the CPU backend ${name}`, () => {
    test('the CPU backend keeps the host Sampler', () => {
      expect(engine(dir!, 'cpu', 1, 64).deviceSampling).toBe(false);
    });
  });
}
