// PrefixCache bookkeeping on the CPU backend with hand-made states: snapshot/restore of a slot (token-indexed
// states only up to the depth), deepest-checkpoint lookup, edge splits and merges, LRU eviction, the byte bound.
import { describe, expect, test } from 'bun:test';
import { snapshotParts, type StateSpec } from '../../../src/backend/backend.ts';
import { CpuBackend } from '../../../src/backend/cpu.ts';
import { PrefixCache } from '../../../src/runtime/prefix_cache.ts';

const SPECS: StateSpec[] = [{ key: 'S', cols: 6 }, { key: 'kv', cols: 4 * 3, tokenCols: 3 }];   // ctx 4, 3 f32 a token

function backend(slots = 3): CpuBackend {
  const o = new CpuBackend();
  o.allocState(SPECS, slots);
  return o;
}

/** The CPU backend's array behind a state tensor. */
const dataOf = (o: CpuBackend, key: string) => (o.state(key) as unknown as { data: Float32Array }).data;

/** Fill slot `slot` of every state with value v + its index. */
function fill(o: CpuBackend, slot: number, v: number): void {
  for (const sp of SPECS) {
    const d = dataOf(o, sp.key);
    for (let i = 0; i < sp.cols; i++) d[slot * sp.cols + i] = v + i;
  }
}

const slotOf = (o: CpuBackend, key: string, slot: number, cols: number) => Array.from(dataOf(o, key).subarray(slot * cols, (slot + 1) * cols));

describe('backend snapshots', () => {
  test('snapshot then restore copies the whole recurrent state and the KV rows up to the depth', async () => {
    const o = backend();
    fill(o, 1, 100);
    const snap = o.snapshot(1, 2);
    expect(snap.bytes).toBe(4 * (6 + 2 * 3));
    expect(snapshotParts(SPECS, 2)).toEqual([6, 6]);
    expect(snapshotParts(SPECS, 9)).toEqual([6, 12]);          // never past the slot's rows
    fill(o, 1, 0);                                               // the slot moves on; the snapshot keeps its copy
    o.resetSlot(2);
    o.restore(snap, 2);
    expect(slotOf(o, 'S', 2, 6)).toEqual([100, 101, 102, 103, 104, 105]);
    expect(slotOf(o, 'kv', 2, 12)).toEqual([100, 101, 102, 103, 104, 105, 0, 0, 0, 0, 0, 0]);
    const host = await o.readSnapshot(snap);
    expect(Array.from(host)).toEqual([100, 101, 102, 103, 104, 105, 100, 101, 102, 103, 104, 105]);
    o.restore(o.uploadSnapshot(host, 2), 0);
    expect(slotOf(o, 'kv', 0, 12).slice(0, 6)).toEqual([100, 101, 102, 103, 104, 105]);
  });
});

describe('PrefixCache', () => {
  test('lookup returns the deepest checkpoint on the path, one token short of the whole sequence at most', () => {
    const o = backend(), c = new PrefixCache(o, { maxBytes: 1 << 20, interval: 4 });
    fill(o, 0, 1); c.insert([1, 2, 3, 4], 0);
    fill(o, 0, 2); c.insert([1, 2, 3, 4, 5, 6, 7, 8], 0);
    fill(o, 0, 3); c.insert([1, 2, 3, 9, 9, 9], 0);              // splits the first edge after 3 tokens
    expect(c.lookup([1, 2, 3, 4, 5])?.depth).toBe(4);
    expect(c.lookup([1, 2, 3, 4])).toBeNull();                   // the whole sequence: no token would be left to feed
    expect(c.lookup([1, 2, 3, 4], 4)?.depth).toBe(4);
    expect(c.lookup([1, 2, 3, 4, 5, 6, 7, 8, 0])?.depth).toBe(8);
    expect(c.lookup([1, 2, 3, 4, 5, 6, 7, 0])?.depth).toBe(4);  // diverges inside an edge
    expect(c.lookup([1, 2, 3, 9, 9, 9, 1])?.depth).toBe(6);
    expect(c.lookup([1, 2, 3, 9, 9])).toBeNull();
    expect(c.lookup([2, 2, 3, 4, 5])).toBeNull();
    expect(c.has([1, 2, 3, 9, 9, 9])).toBe(true);
    expect(c.has([1, 2, 3])).toBe(false);                        // a split point holds no checkpoint
    const hit = c.lookup([1, 2, 3, 9, 9, 9, 1])!;
    c.restore(hit, 1);
    expect(slotOf(o, 'S', 1, 6)[0]).toBe(3);
    expect(c.nextBoundary(0)).toBe(4);
    expect(c.nextBoundary(4)).toBe(8);
    expect(c.nextBoundary(5)).toBe(8);
  });

  test('inserting an existing checkpoint keeps the first; eviction is least recently used and merges edges back', () => {
    const o = backend();
    const probe = new PrefixCache(o, { maxBytes: 1 << 20 });
    const empty = probe.bytes;
    probe.insert([5, 6], 0);
    const one = probe.bytes - empty;                             // a 2-token checkpoint and its node
    const c = new PrefixCache(o, { maxBytes: empty + Math.floor(3.5 * one) + 64, interval: 4 });
    fill(o, 0, 1); c.insert([1, 1], 0);
    fill(o, 0, 2); c.insert([1, 2], 0);
    fill(o, 0, 3); c.insert([1, 3], 0);
    fill(o, 0, 9); c.insert([1, 1], 0);                          // already there: kept as it was, marked used
    expect(c.stats().entries).toBe(3);
    c.restore(c.lookup([1, 1, 0])!, 1);
    expect(slotOf(o, 'S', 1, 6)[0]).toBe(1);
    c.lookup([1, 2, 0]);                                         // [1, 3] is now the least recently used
    fill(o, 0, 4); c.insert([1, 4], 0);
    fill(o, 0, 5); c.insert([1, 5], 0);
    const st = c.stats();
    expect(st.bytes).toBeLessThanOrEqual(st.maxBytes);
    expect(st.evictions).toBe(2);
    expect(c.has([1, 3])).toBe(false);
    expect(c.has([1, 1])).toBe(false);                           // the next least recently used
    expect(c.has([1, 2]) && c.has([1, 4]) && c.has([1, 5])).toBe(true);
    c.clear();
    expect(c.bytes).toBe(empty);
    expect(c.stats().entries).toBe(0);
  });

  test('a chain of checkpoints evicted in any order leaves an empty trie', () => {
    const o = backend(), c = new PrefixCache(o, { maxBytes: 1 << 20 });
    const empty = c.bytes;
    const t = Array.from({ length: 40 }, (_, i) => i % 7);
    for (const d of [4, 8, 12, 20, 40, 6, 30]) c.insert(t.slice(0, d), 0);
    c.insert([...t.slice(0, 10), 99], 0);
    c.insert([...t.slice(0, 10), 99, 98], 0);
    expect(c.lookup([...t.slice(0, 10), 99, 98, 1])?.depth).toBe(12);
    expect(c.lookup(t)?.depth).toBe(30);
    c.lookup(t.slice(0, 7));                                     // touch a few to shuffle the LRU order
    c.lookup([...t.slice(0, 10), 99, 0]);
    c.clear();
    expect(c.bytes).toBe(empty);
  });

  test('a checkpoint larger than the bound is not taken; maxBytes 0 turns the cache off', () => {
    const o = backend();
    const tight = new PrefixCache(o, { maxBytes: 64 });
    tight.insert([1, 2, 3], 0);
    expect(tight.stats().entries).toBe(0);
    const off = new PrefixCache(o, { maxBytes: 0 });
    expect(off.enabled).toBe(false);
    off.insert([1, 2, 3], 0);
    expect(off.lookup([1, 2, 3, 4])).toBeNull();
  });

  test('with a host budget, checkpoints pushed off the device move to the host and restore from there', async () => {
    const o = backend();
    const probe = new PrefixCache(o, { maxBytes: 1 << 20 });
    const empty = probe.bytes;
    probe.insert([7, 7], 0);
    const snap = 4 * (6 + 2 * 3), node = probe.bytes - empty - snap;
    // the trie of all four (it counts against the device bound) and one and a half snapshots
    const c = new PrefixCache(o, { maxBytes: empty + 4 * node + Math.floor(1.5 * snap), hostBytes: 2 * snap, interval: 4 });
    for (const v of [1, 2, 3, 4]) { fill(o, 0, 10 * v); c.insert([v, v], 0); }
    await c.settled();
    const st = c.stats();
    expect(st).toMatchObject({ entries: 1, hostEntries: 2, hostBytes: 2 * snap, spills: 3 });
    expect(st.bytes).toBeLessThanOrEqual(st.maxBytes);
    expect(c.has([1, 1])).toBe(false);                         // pushed off the host too (its LRU)
    const hit = c.lookup([2, 2, 0])!;
    expect(hit.snapshot).toBeNull();
    expect(hit.host).not.toBeNull();
    c.restore(hit, 2);
    expect(slotOf(o, 'S', 2, 6)).toEqual([20, 21, 22, 23, 24, 25]);
    expect(slotOf(o, 'kv', 2, 12).slice(0, 6)).toEqual([20, 21, 22, 23, 24, 25]);
    c.restore(c.lookup([4, 4, 0])!, 1);                           // still on the device
    expect(slotOf(o, 'S', 1, 6)[0]).toBe(40);
    c.clear();
    await c.settled();
    expect(c.stats()).toMatchObject({ entries: 0, hostEntries: 0, hostBytes: 0, bytes: empty });
  });

  test('a snapshot the backend cannot make (a buffer over its limit) is skipped, not thrown into the scheduler', () => {
    const o = backend();
    o.snapshot = () => { throw new Error('snapshot: needs a 9 GiB buffer, the adapter allows 4 GiB'); };
    const c = new PrefixCache(o, { maxBytes: 1 << 20 });
    expect(() => c.insert([1, 2, 3], 0)).not.toThrow();
    expect(c.stats().entries).toBe(0);
  });

  test('a whole sequence hits only with `whole` and a checkpoint that kept its logits', () => {
    const o = backend(), c = new PrefixCache(o, { maxBytes: 1 << 20, interval: 4 });
    c.insert([1, 2, 3, 4], 0);
    c.insert([1, 2, 3, 4, 5, 6], 0, new Float32Array([0.5, -1, 2]));
    expect(c.lookup([1, 2, 3, 4, 5, 6])?.depth).toBe(4);
    expect(c.lookup([1, 2, 3, 4, 5, 6], undefined, true)).toMatchObject({ depth: 6, logits: new Float32Array([0.5, -1, 2]) });
    expect(c.lookup([1, 2, 3, 4], undefined, true)?.depth).toBeUndefined();   // its checkpoint has no logits
    c.insert([1, 2, 3, 4], 0, new Float32Array([7]));                          // added to the existing checkpoint
    expect(c.lookup([1, 2, 3, 4], undefined, true)?.logits).toEqual(new Float32Array([7]));
    expect(c.lookup([1, 2, 3, 4, 5, 6, 7], undefined, true)).toMatchObject({ depth: 6, logits: null });   // not the whole sequence
    const before = c.bytes;
    c.clear();
    expect(before - c.bytes).toBeGreaterThan(2 * 48 + 4 * 4);
  });

  test('hits, misses and saved tokens are counted', () => {
    const c = new PrefixCache(backend(), { maxBytes: 1 << 20 });
    c.record(0); c.record(12); c.record(3); c.recordSaved(5);
    expect(c.stats()).toMatchObject({ hits: 2, misses: 1, tokensSaved: 20 });
  });
});
