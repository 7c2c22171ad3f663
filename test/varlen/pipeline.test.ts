// Pipelined greedy decode (Engine.runArgmaxFed, generate's decodeAhead): the next step is submitted before the
// current token is back, its id fed on the device. It must choose exactly the tokens of the serial path
// (FLA_PIPELINE=0), end at the same EOS / stop string / max tokens, and leave a kept slot where the serial path does.
import { afterEach, describe, expect, test } from 'bun:test';
import { generate, type GenerateOptions, type GenerateStats } from '../../src/runtime/generate.ts';
import type { Engine } from '../../src/runtime/engine.ts';
import { Scheduler } from '../../src/runtime/scheduler.ts';
import { fixture } from '../helpers/fixtures.ts';
import { BACKENDS, engine } from '../helpers/model.ts';

const FIXTURES = ['llama-tiny', 'rwkv7-tiny'] as const;
const PROMPT = [5, 17, 42, 9, 120, 33];

afterEach(() => { delete process.env.FLA_PIPELINE; delete process.env.FLA_STEPS_PER_SUBMIT; });

async function gen(e: Engine, prompt: number[], o: Partial<GenerateOptions>, pipeline: boolean): Promise<{ ids: number[]; stats: GenerateStats }> {
  if (pipeline) delete process.env.FLA_PIPELINE; else process.env.FLA_PIPELINE = '0';
  const it = generate(e, null, prompt, { maxTokens: 24, sampling: { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 }, ...o });
  const ids: number[] = [];
  let r = await it.next();
  while (!r.done) { if (r.value.id !== null) ids.push(r.value.id); r = await it.next(); }
  return { ids, stats: r.value };
}

for (const name of FIXTURES) {
  const dir = fixture(name);
  for (const kind of BACKENDS) {
    describe.skipIf(!dir)(`pipelined decode ${name} (${kind})`, () => {
      test('same tokens as the serial path; EOS and max tokens end it at the same place', async () => {
        const e = engine(dir!, kind, 2, 64);
        const serial = await gen(e, PROMPT, {}, false);
        const piped = await gen(e, PROMPT, {}, true);
        expect(piped.ids).toEqual(serial.ids);
        expect(serial.ids.length).toBe(24);
        expect(piped.stats.finishReason).toBe('length');
        // an EOS in the middle (the 7th token chosen) and at the very first token
        for (const at of [6, 0]) {
          const eosIds = [serial.ids[at]!];
          const cut = serial.ids.indexOf(serial.ids[at]!);
          const a = await gen(e, PROMPT, { eosIds }, false), b = await gen(e, PROMPT, { eosIds }, true);
          expect(b.ids).toEqual(serial.ids.slice(0, cut));
          expect(a.ids).toEqual(b.ids);
          expect([a.stats.finishReason, b.stats.finishReason]).toEqual(['eos', 'eos']);
        }
        for (const max of [1, 2, 3]) expect((await gen(e, PROMPT, { maxTokens: max }, true)).ids).toEqual(serial.ids.slice(0, max));
      }, 120_000);

      test('a kept slot continues as after a serial run (rewound KV cache, or no run-ahead on recurrent state)', async () => {
        const e = engine(dir!, kind, 2, 64);
        const probe = await gen(e, PROMPT, {}, false);
        const eosIds = [probe.ids[5]!];
        const turn = async (pipeline: boolean) => {
          const slot = e.acquire();
          const a = await gen(e, PROMPT, { slot, eosIds }, pipeline);
          const pos = e.positions[slot];
          const b = await gen(e, [probe.ids[5]!, 3, 4], { slot, maxTokens: 8 }, pipeline);   // the next turn
          e.release(slot);
          return { a: a.ids, fed: a.stats.fedTokens, pos, b: b.ids };
        };
        const serial = await turn(false), piped = await turn(true);
        expect(piped).toEqual(serial);
        expect(serial.pos).toBe(PROMPT.length + serial.fed);
      }, 120_000);

      test('runArgmaxFed over several sequences equals feeding each id from the host', async () => {
        const e = engine(dir!, kind, 3, 64);
        const run = async (fed: boolean) => {
          const slots = [e.acquire(), e.acquire(), e.acquire()];
          const out: number[][] = [];
          let r = await e.runArgmax(slots.map((slot, i) => ({ slot, tokens: PROMPT.slice(i) })));
          out.push(r.map(p => p.id));
          let inFlight = e.runArgmax(slots.map((slot, i) => ({ slot, tokens: [r[i]!.id] })));
          for (let s = 0; s < 6; s++) {
            if (fed) { const next = e.runArgmaxFed(slots); r = await inFlight; inFlight = next; }
            else { r = await inFlight; inFlight = e.runArgmax(slots.map((slot, i) => ({ slot, tokens: [r[i]!.id] }))); }
            out.push(r.map(p => p.id));
          }
          out.push((await inFlight).map(p => p.id));
          slots.forEach(s => e.release(s));
          return out;
        };
        const host = await run(false), dev = await run(true);
        expect(dev).toEqual(host);
        await expect(e.runArgmaxFed([0, 1])).rejects.toThrow();
      }, 120_000);
    });
  }
}

// Several decode steps a submit (FLA_STEPS_PER_SUBMIT; GPU): each fed the one before's token on the device, one
// readback for the group. Same tokens, same ends (an EOS inside a group, max tokens between groups), and a kept KV
// cache rewound by every step that ran past the end.
for (const name of FIXTURES) {
  const dir = fixture(name);
  describe.skipIf(!dir || !BACKENDS.includes('gpu'))(`grouped decode steps ${name} (gpu)`, () => {
    test('same tokens as the serial path at 1, 3 and 8 steps a submit; the groups were submitted as one', async () => {
      const e = engine(dir!, 'gpu', 3, 64);
      const o = e.model.backend, begin = o.beginSteps!.bind(o);
      let groups = 0;
      o.beginSteps = (bytes: number) => { groups++; begin(bytes); };
      const serial = await gen(e, PROMPT, {}, false);
      for (const k of ['1', '3', '8']) {
        process.env.FLA_STEPS_PER_SUBMIT = k;
        groups = 0;
        expect((await gen(e, PROMPT, {}, true)).ids).toEqual(serial.ids);
        expect(groups > 0).toBe(k !== '1');
        for (const at of [3, 4, 13]) {   // inside and at the edges of 3-step groups
          const b = await gen(e, PROMPT, { eosIds: [serial.ids[at]!] }, true);
          expect(b.ids).toEqual(serial.ids.slice(0, serial.ids.indexOf(serial.ids[at]!)));
          expect(b.stats.finishReason).toBe('eos');
        }
        for (const max of [2, 4, 5, 11]) expect((await gen(e, PROMPT, { maxTokens: max }, true)).ids).toEqual(serial.ids.slice(0, max));
      }
      // three sequences, five steps in one group: as fed from the host
      const slots = [e.acquire(), e.acquire(), e.acquire()];
      const host: number[][] = [], dev: number[][] = [];
      const first = await e.runArgmax(slots.map((slot, i) => ({ slot, tokens: PROMPT.slice(i) })));
      let r = first;
      for (let s = 0; s < 6; s++) { r = await e.runArgmax(slots.map((slot, i) => ({ slot, tokens: [r[i]!.id] }))); host.push(r.map(p => p.id)); }
      slots.forEach(s => e.release(s));
      const again = [e.acquire(), e.acquire(), e.acquire()];
      expect(await e.runArgmax(again.map((slot, i) => ({ slot, tokens: PROMPT.slice(i) })))).toEqual(first);
      const one = e.runArgmax(again.map((slot, i) => ({ slot, tokens: [first[i]!.id] })));
      groups = 0;
      const rest = e.runArgmaxFedSteps(again, 5);
      for (const p of [one, ...rest]) dev.push((await p).map(x => x.id));
      expect(groups).toBe(1);
      expect(dev).toEqual(host);
      again.forEach(s => e.release(s));
    }, 300_000);

    if (name === 'llama-tiny') test('a kept KV cache is rewound by all the steps past the end', async () => {
      const e = engine(dir!, 'gpu', 2, 64);
      const probe = await gen(e, PROMPT, {}, false);
      const turn = async (pipeline: boolean, at: number) => {
        const slot = e.acquire();
        const a = await gen(e, PROMPT, { slot, eosIds: [probe.ids[at]!] }, pipeline);
        const pos = e.positions[slot];
        const b = await gen(e, [probe.ids[at]!, 3, 4], { slot, maxTokens: 8 }, pipeline);
        e.release(slot);
        return { a: a.ids, fed: a.stats.fedTokens, pos, b: b.ids };
      };
      process.env.FLA_STEPS_PER_SUBMIT = '4';
      for (const at of [2, 5]) expect(await turn(true, at)).toEqual(await turn(false, at));
    }, 120_000);
  });
}

// fla serve: a decode-only step of the whole batch submits the next one ahead; requests joining (a full batch with
// one queued) and finishing at different lengths must give the tokens of the serial scheduler
for (const name of FIXTURES) {
  const dir = fixture(name);
  describe.skipIf(!dir || !BACKENDS.includes('gpu'))(`pipelined scheduler ${name} (gpu)`, () => {
    test('same tokens as FLA_PIPELINE=0, and steps were fed on the device', async () => {
      const e = engine(dir!, 'gpu', 2, 64);
      let fed = 0;
      const f = e.runArgmaxFed.bind(e);
      e.runArgmaxFed = (...a: Parameters<typeof f>) => { fed++; return f(...a); };
      const s = new Scheduler(e, null, { eosIds: [] });
      const greedy = { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };
      const run = async (pipeline: boolean) => {
        if (pipeline) delete process.env.FLA_PIPELINE; else process.env.FLA_PIPELINE = '0';
        const rs = [[1, 2, 3], [4, 5, 6, 7], [8, 9]].map((prompt, i) => s.submit({ prompt, maxTokens: 10 + 5 * i, sampling: greedy }));
        return Promise.all(rs.map(r => r.result.then(x => x.ids)));
      };
      const serial = await run(false), fedSerial = fed, piped = await run(true);
      expect(piped).toEqual(serial);
      expect([fedSerial, fed > 10]).toEqual([0, true]);
    }, 120_000);
  });
}
