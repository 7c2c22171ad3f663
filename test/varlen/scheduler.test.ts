// The continuous-batching scheduler on the default model (GPU if any, else CPU): batched greedy outputs equal
// serial generate() while requests join and finish at different steps; cancellation, queue limit, context check.
import { describe, expect, test } from 'bun:test';
import { Engine, type SeqInput } from '../../src/runtime/engine.ts';
import { generate } from '../../src/runtime/generate.ts';
import { validateSampling } from '../../src/runtime/sample.ts';
import { ClosedError, QueueFullError, Scheduler, type GenRequest } from '../../src/runtime/scheduler.ts';
import { HfTokenizer } from '../../src/tokenizer/hf.ts';
import { GpuError, UsageError } from '../../src/util/errors.ts';
import { sharedModel } from '../helpers/fixtures.ts';
import { HAS_GPU } from '../helpers/gpu.ts';
import { load } from '../helpers/model.ts';

const kjv = sharedModel('kjv-rwkv7');
const llama = sharedModel('kjv-llama');
const KIND = HAS_GPU ? 'gpu' : 'cpu';
const greedy = validateSampling({ temperature: 0 });

const TEXTS = [
  'In the beginning',
  'And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness.',
  'The LORD is my shepherd;',
  'Jesus wept.',
  'For God so loved the world, that he gave his only begotten Son,',
  'Blessed are the meek:',
];
const MAX = [10, 3, 14, 6, 1, 8];
const STOP: (string[] | undefined)[] = [undefined, undefined, [','], undefined, undefined, ['.']];

describe.skipIf(!kjv)(`scheduler (${KIND})`, () => {
  const model = kjv ? load(kjv, KIND) : null!;
  const tok = kjv ? HfTokenizer.load(kjv) : null!;
  const engine = kjv ? new Engine(model, 3) : null!;
  const prompts = kjv ? TEXTS.map(t => tok.encode(t)) : [];
  const req = (i: number, extra: Partial<GenRequest> = {}): GenRequest => ({ prompt: prompts[i]!, maxTokens: MAX[i]!, sampling: greedy, stop: STOP[i], ...extra });

  test('batched greedy equals serial generate(), with requests joining and finishing at different steps', async () => {
    const serial: { ids: number[]; text: string; finish: string }[] = [];
    for (let i = 0; i < TEXTS.length; i++) {
      const it = generate(engine, tok, prompts[i]!, { maxTokens: MAX[i]!, sampling: greedy, stop: STOP[i], eosIds: [0] });
      const ids: number[] = [];
      let text = '', r = await it.next();
      for (let n = 0; !r.done && n < 100; n++, r = await it.next()) { if (r.value.id !== null) ids.push(r.value.id); text += r.value.text; }
      if (!r.done) throw new Error('generate did not end');
      serial.push({ ids, text, finish: r.value.finishReason });
    }

    // count concurrent runs and steps that mix decode tokens with a prefill chunk (greedy steps run as runArgmax)
    const run = engine.run.bind(engine), runArgmax = engine.runArgmax.bind(engine);
    let inFlight = 0, maxInFlight = 0, mixed = 0;
    const counted = <T>(f: (seqs: SeqInput[]) => Promise<T>) => async (seqs: SeqInput[]): Promise<T> => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      if (seqs.some(s => s.tokens.length > 1) && seqs.some(s => s.tokens.length === 1)) mixed++;
      try { return await f(seqs); } finally { inFlight--; }
    };
    engine.run = counted(run);
    engine.runArgmax = counted(runArgmax);
    try {
      const s = new Scheduler(engine, tok, { eosIds: [0] });     // 3 slots for 6 requests: the rest queue
      const streams = [0, 1, 2, 3, 4].map(i => s.submit(req(i)));
      const pieces: string[] = [];
      for await (const p of streams[0]!) { pieces.push(p.text); if (pieces.length === 2) break; }
      streams.push(s.submit(req(5)));                             // joins while others run
      const got = await Promise.all(streams.map(x => x.result));
      got.forEach((g, i) => {
        expect({ ids: g.ids, text: g.text, finish: g.finishReason as string }, `request ${i}`).toEqual(serial[i]!);
        expect(g.promptTokens).toBe(prompts[i]!.length);
        expect(g.generatedTokens).toBe(g.ids.length);
      });
      expect(new Set(got.map(g => g.ids.length)).size).toBeGreaterThan(2);
      expect(maxInFlight).toBe(1);
      expect(mixed).toBeGreaterThan(0);
      const st = s.stats();
      expect(st.running + st.queued).toBe(0);
      expect(st.generatedTokens).toBe(got.reduce((a, g) => a + g.generatedTokens, 0));
    } finally {
      engine.run = run;
      engine.runArgmax = runArgmax;
    }
  });

  test('streamed pieces add up to the text; max_tokens 0 finishes at once', async () => {
    const s = new Scheduler(engine, tok, { eosIds: [0] });
    const stream = s.submit(req(0));
    let text = '';
    for await (const p of stream) text += p.text;
    expect(text).toBe((await stream.result).text);
    const zero = await s.submit(req(0, { maxTokens: 0 })).result;
    expect(zero).toMatchObject({ ids: [], text: '', finishReason: 'length' });
  });

  test('a cancelled request frees its slot at once, running or queued', async () => {
    const s = new Scheduler(engine, tok, { eosIds: [] });
    const a = new AbortController(), b = new AbortController();
    const long = s.submit(req(0, { maxTokens: 500, signal: a.signal }));
    const others = [1, 2].map(i => s.submit(req(i, { maxTokens: 500, signal: b.signal })));
    const queued = s.submit(req(3, { maxTokens: 500, signal: b.signal }));
    let n = 0;
    for await (const _ of long) if (++n === 2) { a.abort(); break; }
    const r = await long.result;
    expect(r.finishReason).toBe('cancelled');
    expect(r.ids.length).toBeLessThan(10);
    b.abort();
    for (const x of [...others, queued]) expect((await x.result).finishReason).toBe('cancelled');
    expect(s.stats()).toMatchObject({ running: 0, queued: 0 });
    const slots = [0, 1, 2].map(() => engine.acquire());       // every slot is free again
    slots.forEach(x => engine.release(x));
  });

  test('beyond max-batch + max-queue a request is refused; later ones are accepted again', async () => {
    const s = new Scheduler(engine, tok, { maxQueue: 1, eosIds: [0] });
    const ok = [0, 1, 2, 3].map(i => s.submit(req(i)));       // 3 slots + 1 queued
    expect(() => s.submit(req(4))).toThrow(QueueFullError);
    await Promise.all(ok.map(x => x.result));
    expect((await s.submit(req(4)).result).finishReason).toBe('length');
  });

  test('a failed step ends its requests with an error and marks the device failed', async () => {
    const s = new Scheduler(engine, tok, { eosIds: [0] });
    const run = engine.run, runArgmax = engine.runArgmax;
    engine.run = engine.runArgmax = async () => { throw new GpuError('GPU device lost: test'); };
    try {
      const r = await s.submit(req(0)).result;
      expect(r.finishReason).toBe('error');
      expect(r.error).toBeInstanceOf(GpuError);
      expect(s.stats().failure).toMatch(/device lost/);
      expect(() => s.submit(req(0))).toThrow(GpuError);
    } finally {
      engine.run = run;
      engine.runArgmax = runArgmax;
    }
  });

  test('drain finishes in-flight requests, then refuses new ones', async () => {
    const s = new Scheduler(engine, tok, { eosIds: [0] });
    const x = s.submit(req(2));
    await s.drain(60_000);
    expect(await x.result).toMatchObject({ finishReason: 'length', generatedTokens: MAX[2] });
    expect(() => s.submit(req(0))).toThrow(ClosedError);
    const t = new Scheduler(engine, tok, { eosIds: [] });
    const y = t.submit(req(0, { maxTokens: 10_000 }));
    await t.drain(0);                                           // no grace: cancelled with an error
    expect((await y.result).finishReason).toBe('error');
  });
});

describe.skipIf(!llama)('scheduler context limit', () => {
  test('a prompt over the context is refused before any GPU work', async () => {
    const engine = new Engine(load(llama!, 'cpu'), 2, 512, 32);
    const s = new Scheduler(engine, HfTokenizer.load(llama!));
    let runs = 0;
    const run = engine.run.bind(engine), runArgmax = engine.runArgmax.bind(engine);
    engine.run = seqs => { runs++; return run(seqs); };
    engine.runArgmax = seqs => { runs++; return runArgmax(seqs); };
    expect(() => s.submit({ prompt: new Array(40).fill(5), maxTokens: 1, sampling: greedy })).toThrow(/exceeds the context of 32 tokens/);
    expect(() => s.submit({ prompt: new Array(20).fill(5), maxTokens: 20, sampling: greedy })).toThrow(UsageError);
    expect(() => s.submit({ prompt: [engine.vocab], maxTokens: 1, sampling: greedy })).toThrow(/out of range/);
    expect(() => s.submit({ prompt: [], maxTokens: 1, sampling: greedy })).toThrow(/empty/);
    expect(runs).toBe(0);
    const r = await s.submit({ prompt: new Array(20).fill(5), maxTokens: 12, sampling: greedy }).result;
    expect(r.promptTokens + r.generatedTokens).toBeLessThanOrEqual(32);
    expect(runs).toBeGreaterThan(0);
  });
});
