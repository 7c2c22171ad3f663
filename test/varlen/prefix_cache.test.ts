// The prompt-state cache on every fixture family and backend: a prompt resumed from a checkpoint gives the logits
// (1e-5 relative) and greedy tokens of the same prompt run from scratch in one pass — for a hit exactly at a
// checkpoint, between checkpoints, on a branch of the trie, after eviction, spilled to the host and after a state
// file round trip.
import { describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotParts } from '../../src/backend/backend.ts';
import type { Engine } from '../../src/runtime/engine.ts';
import { PrefixCache } from '../../src/runtime/prefix_cache.ts';
import { loadState, saveState } from '../../src/runtime/state_file.ts';
import { fixture } from '../helpers/fixtures.ts';
import { argmaxRows, BACKENDS, engine, relErr } from '../helpers/model.ts';

const FAMILIES = ['rwkv7-tiny', 'gated_deltanet-tiny', 'delta_net-tiny', 'gla-tiny', 'abc-tiny', 'linear_attn-tiny',
  'llama-tiny', 'qwen3-tiny', 'transformer-tiny', 'qwen3_next-tiny'];
const INTERVAL = 8;
const DECODE = 4;

/** Deterministic token ids in [0, min(V, 500)). */
function ids(seed: number, n: number, V: number): number[] {
  let s = seed * 2654435761 >>> 0 || 1;
  return Array.from({ length: n }, () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) % Math.min(V, 500); });
}

interface Out { logits: Float32Array; greedy: number[]; depth: number }

async function decode(e: Engine, slot: number, logits: Float32Array): Promise<number[]> {
  const out = [argmaxRows(logits, e.vocab)[0]!];
  while (out.length < DECODE) out.push(argmaxRows((await e.run([{ slot, tokens: [out.at(-1)!] }]))[0]!, e.vocab)[0]!);
  return out;
}

/** The prompt from scratch in one pass, then greedy decode. */
async function plain(e: Engine, tokens: number[]): Promise<Out> {
  const slot = e.acquire();
  try {
    const [logits] = await e.run([{ slot, tokens }]);
    return { logits: logits!, greedy: await decode(e, slot, logits!), depth: 0 };
  } finally { e.release(slot); }
}

/** As the scheduler does it: restore the deepest checkpoint, prefill to each boundary, checkpoint there and at the end. */
async function cached(e: Engine, c: PrefixCache, tokens: number[]): Promise<Out> {
  const slot = e.acquire();
  try {
    const hit = c.lookup(tokens);
    let fed = 0;
    if (hit) { c.restore(hit, slot); e.positions[slot] = fed = hit.depth; }
    let logits!: Float32Array;
    while (fed < tokens.length) {
      const end = Math.min(tokens.length, c.nextBoundary(fed));
      [logits] = (await e.run([{ slot, tokens: tokens.slice(fed, end) }])) as [Float32Array];
      fed = end;
      c.insert(tokens.slice(0, fed), slot);
    }
    return { logits, greedy: await decode(e, slot, logits), depth: hit?.depth ?? 0 };
  } finally { e.release(slot); }
}

async function expectSame(e: Engine, c: PrefixCache, tokens: number[], depth: number, what: string): Promise<void> {
  const got = await cached(e, c, tokens), want = await plain(e, tokens);
  expect(got.depth, `${what}: checkpoint depth`).toBe(depth);
  expect(relErr(got.logits, want.logits), `${what}: logits`).toBeLessThan(1e-5);
  expect(got.greedy, `${what}: greedy tokens`).toEqual(want.greedy);
}

for (const name of FAMILIES) {
  const dir = fixture(name);
  describe.skipIf(!dir)(`${name} prefix cache`, () => {
    for (const kind of BACKENDS) {
      test(`${kind}: hits at, between and on a branch of checkpoints, after eviction, from the host and after save/load equal a fresh run`, async () => {
        const e = engine(dir!, kind, 2, 4096);
        const V = e.vocab;
        const A = ids(1, 21, V), B = ids(2, 5, V), C = ids(3, 4, V), D = ids(4, 7, V), E = ids(5, 3, V);
        const c = new PrefixCache(e.model.backend, { maxBytes: 1 << 30, interval: INTERVAL });
        await expectSame(e, c, A, 0, 'first prompt (miss)');                                        // checkpoints 8, 16, 21
        expect(c.stats().entries).toBe(3);
        await expectSame(e, c, [...A, ...B], 21, 'exactly at a checkpoint');
        await expectSame(e, c, [...A.slice(0, 19), ...C], 16, 'between checkpoints');
        await expectSame(e, c, [...A.slice(0, 12), ...D], 8, 'branch off the middle of an edge');   // checkpoints 16, 19 on the branch
        await expectSame(e, c, [...A.slice(0, 12), ...D, ...E], 19, 'deep on the branch');
        await expectSame(e, c, [...A, ...B, ...E], 26, 'the first path again');

        // a bound that holds one snapshot of A (1.5 of them): older checkpoints go, the last still restores right
        const one = 4 * snapshotParts(e.model.backend.stateSpecs, A.length).reduce((a, b) => a + b, 0);
        const small = new PrefixCache(e.model.backend, { maxBytes: Math.floor(1.5 * one) + 2048, interval: INTERVAL });
        await expectSame(e, small, A, 0, 'small cache, first prompt');
        const st = small.stats();
        expect(st.evictions).toBeGreaterThan(0);
        expect(st.bytes).toBeLessThanOrEqual(st.maxBytes);
        expect(small.lookup(A, 8)).toBeNull();                                                      // depth 8 was evicted
        await expectSame(e, small, [...A, ...B], 21, 'after eviction');

        // the same bound with room on the host: 8 and 16 move there, and restore from there
        const spill = new PrefixCache(e.model.backend, { maxBytes: Math.floor(1.5 * one) + 2048, hostBytes: 1 << 30, interval: INTERVAL });
        await expectSame(e, spill, A, 0, 'spilling cache, first prompt');
        await spill.settled();
        expect(spill.stats()).toMatchObject({ entries: 1, hostEntries: 2 });
        expect(spill.lookup([...A.slice(0, 18), ...C])?.snapshot).toBeNull();
        await expectSame(e, spill, [...A.slice(0, 18), ...C], 16, 'restored from the host');
        await spill.settled();
        spill.clear();

        // state file: save the checkpoint after A, load it into a fresh cache
        const file = join(mkdtempSync(join(tmpdir(), 'fla-state-')), 'a.state');
        const slot = e.acquire();
        await e.run([{ slot, tokens: A }]);
        await saveState(file, e.model, A, e.model.backend.snapshot(slot, A.length));
        e.release(slot);
        const loaded = loadState(file, e.model);
        expect(loaded.tokens).toEqual(A);
        const fresh = new PrefixCache(e.model.backend, { maxBytes: 1 << 30, interval: INTERVAL });
        expect(fresh.adopt(loaded.tokens, loaded.snapshot)).toBe(true);
        await expectSame(e, fresh, [...A, ...C], 21, 'after save/load');
        c.clear(); small.clear(); fresh.clear();
        expect(c.stats()).toMatchObject({ entries: 0 });
      });
    }
  });
}
