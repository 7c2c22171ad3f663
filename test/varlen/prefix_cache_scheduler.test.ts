// The prompt-state cache inside the continuous-batching scheduler, on every fixture family (GPU if any, else CPU):
// requests sharing a prefix while it is being computed give the uncached tokens; a 12-turn chat prefills only the
// tokens no state holds yet (counted); 300 distinct prompts keep the cache under its bound (three families).
import { describe, expect, test } from 'bun:test';
import { Engine } from '../../src/runtime/engine.ts';
import { PrefixCache } from '../../src/runtime/prefix_cache.ts';
import { validateSampling } from '../../src/runtime/sample.ts';
import { Scheduler, type GenRequest, type GenResult } from '../../src/runtime/scheduler.ts';
import { fixture } from '../helpers/fixtures.ts';
import { HAS_GPU } from '../helpers/gpu.ts';
import { load } from '../helpers/model.ts';

const FAMILIES = ['rwkv7-tiny', 'gated_deltanet-tiny', 'delta_net-tiny', 'gla-tiny', 'abc-tiny', 'linear_attn-tiny',
  'llama-tiny', 'qwen3-tiny', 'transformer-tiny', 'qwen3_next-tiny'];
const BOUND_FAMILIES = ['rwkv7-tiny', 'llama-tiny', 'qwen3_next-tiny'];
const KIND = HAS_GPU ? 'gpu' : 'cpu';
const greedy = validateSampling({ temperature: 0 });

function ids(seed: number, n: number, V: number): number[] {
  let s = seed * 2654435761 >>> 0 || 1;
  return Array.from({ length: n }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) % Math.min(V, 500); });
}

const req = (prompt: number[], maxTokens: number): GenRequest => ({ prompt, maxTokens, sampling: greedy, eosIds: [] });

for (const name of FAMILIES) {
  const dir = fixture(name);
  describe.skipIf(!dir)(`${name} prefix cache in the scheduler (${KIND})`, () => {
    const model = dir ? load(dir, KIND) : null!;
    const engine = dir ? new Engine(model, 4, 512) : null!;
    const V = dir ? engine.vocab : 0;

    test('requests sharing a prefix while it is being computed equal the uncached run', async () => {
      const P = ids(7, 40, V);
      const prompts = [[...P, ...ids(8, 3, V)], [...P, ...ids(9, 5, V)], [...P.slice(0, 29), ...ids(10, 2, V)], [...P, ...ids(8, 3, V)]];
      const plainS = new Scheduler(engine, null, { eosIds: [] });
      const want = await Promise.all(prompts.map(p => plainS.submit(req(p, 5)).result));

      const cache = new PrefixCache(model.backend, { maxBytes: 1 << 30, interval: 8 });
      const s = new Scheduler(engine, null, { eosIds: [], prefixCache: cache });
      const first = s.submit(req(prompts[0]!, 5));
      // the others arrive once the first has prefilled part of the shared prefix
      const run = engine.run.bind(engine);
      let steps = 0;
      const later: Promise<GenResult>[] = [];
      engine.run = async seqs => { if (++steps === 2) later.push(...prompts.slice(1).map(p => s.submit(req(p, 5)).result)); return run(seqs); };
      let got: GenResult[];
      try {
        const r0 = await first.result;
        got = [r0, ...(await Promise.all(later))];
      } finally { engine.run = run; }
      got.forEach((g, i) => expect(g.ids, `request ${i}`).toEqual(want[i]!.ids));
      expect(got.map(g => g.promptTokens)).toEqual(prompts.map(p => p.length));
      expect(got[0]!.cachedTokens).toBe(0);
      for (const g of got.slice(1)) expect(g.cachedTokens).toBeGreaterThan(0);   // restored from the first's checkpoints
      expect(cache.stats().hits).toBe(3);
      cache.clear();
    });

    test('a whole repeated prompt prefills nothing: it samples from the logits kept with its checkpoint', async () => {
      const cache = new PrefixCache(model.backend, { maxBytes: 1 << 30, interval: 8 });
      const s = new Scheduler(engine, null, { eosIds: [], prefixCache: cache });
      const plainS = new Scheduler(engine, null, { eosIds: [] });
      const P = ids(31, 19, V);
      const sampled: GenRequest = { prompt: P, maxTokens: 6, sampling: validateSampling({ temperature: 0.9, seed: 5, topK: 0, topP: 1, minP: 0 }), eosIds: [] };
      for (const r of [req(P, 6), sampled]) {
        const want = await plainS.submit(r).result;
        const first = await s.submit(r).result;
        const before = s.stats().promptTokens;
        const again = await s.submit(r).result;
        expect(s.stats().promptTokens - before).toBe(0);
        expect(again.cachedTokens).toBe(P.length);
        expect(again.promptTokens).toBe(P.length);
        expect(first.ids).toEqual(want.ids);
        expect(again.ids).toEqual(want.ids);
      }
      cache.clear();
    });

    test('a 12-turn chat prefills only the tokens no checkpoint holds', async () => {
      const cache = new PrefixCache(model.backend, { maxBytes: 1 << 30, interval: 16 });
      const s = new Scheduler(engine, null, { eosIds: [], prefixCache: cache });
      const plainS = new Scheduler(engine, null, { eosIds: [] });
      let history: number[] = [];
      let stateHolds = 0;                              // tokens of `history` the last reply's checkpoint holds
      for (let turn = 0; turn < 12; turn++) {
        const prompt = [...history, ...ids(100 + turn, 3 + (turn % 4), V)];
        const before = s.stats().promptTokens;
        const r = await s.submit(req(prompt, 3)).result;
        const prefilled = s.stats().promptTokens - before;
        expect(prefilled, `turn ${turn}`).toBe(prompt.length - stateHolds);
        expect(r.cachedTokens, `turn ${turn}`).toBe(stateHolds);
        expect(r.promptTokens).toBe(prompt.length);
        if (turn % 4 === 3) expect(r.ids, `turn ${turn} vs uncached`).toEqual((await plainS.submit(req(prompt, 3)).result).ids);
        history = [...prompt, ...r.ids];
        stateHolds = history.length - 1;               // the last sampled token was never fed
      }
      expect(cache.stats().hits).toBe(11);
      cache.clear();
    });

    // the bound is family-agnostic bookkeeping: one recurrent, one attention and one hybrid family are enough
    test.skipIf(!BOUND_FAMILIES.includes(name))('300 distinct prompts keep the cache under its bound', async () => {
      const probe = new PrefixCache(model.backend, { maxBytes: 1 << 30, interval: 256 });
      const s0 = new Scheduler(engine, null, { eosIds: [], prefixCache: probe });
      await s0.submit(req(ids(999, 6, V), 1)).result;
      const one = probe.stats().bytes;                 // one checkpoint of a 6-token prompt, and its trie node
      probe.clear();
      const maxBytes = Math.floor(5.5 * one);
      const cache = new PrefixCache(model.backend, { maxBytes, interval: 256 });
      const insert = cache.insert.bind(cache);
      let peak = 0;
      cache.insert = (t, slot) => { insert(t, slot); peak = Math.max(peak, cache.bytes); };
      const s = new Scheduler(engine, null, { eosIds: [], prefixCache: cache, maxQueue: 300 });
      const rs = await Promise.all(Array.from({ length: 300 }, (_, i) => s.submit(req(ids(2000 + i, 4 + (i % 5), V), 1)).result));
      expect(rs.every(r => r.finishReason === 'length')).toBe(true);
      const st = cache.stats();
      expect(peak).toBeLessThanOrEqual(maxBytes);
      expect(st.bytes).toBeLessThanOrEqual(maxBytes);
      expect(st.entries).toBeGreaterThan(0);
      expect(st.evictions).toBeGreaterThan(250);   // 300 checkpoints into room for 5
      cache.clear();
      expect(cache.stats().bytes).toBe(probe.stats().bytes);   // an empty trie again: nothing leaked
    });
  });
}
