// rope, kv_store and sdpa (kernels/attention): GPU against the CPU reference. Queries of several sequences in one
// step, each continuing a cached prefix (cursor.pos), at lengths around the 64-key block edge and 1000,
// head dims 64 and 128, GQA ratios 1, 2 and 4, and a sliding window.
import { describe, expect, test } from 'bun:test';
import { invFreq, ropeTable } from '../../../kernels/attention/rope.ref.ts';
import { rope } from '../../../kernels/attention/rope.ts';
import { kvStore, sdpa } from '../../../kernels/attention/sdpa.ts';
import type { Cursor } from '../../../src/backend/backend.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, hostWeight, type StepSpec } from './harness.ts';

const SLOTS = 3;

function stepOf(seqs: { slot: number; len: number; pos: number }[]): StepSpec {
  const cursors: Cursor[] = [];
  let start = 0;
  for (const s of seqs) { cursors.push({ slot: s.slot, start, len: s.len, pos: s.pos }); start += s.len; }
  return { ids: new Array(start).fill(0), cursors, keep: [start - 1] };
}

async function attentionCase(H: number, KV: number, D: number, seqs: { slot: number; len: number; pos: number }[], window = 0): Promise<void> {
  const what = `sdpa H=${H} KV=${KV} D=${D} window=${window} seqs ${seqs.map(s => `${s.pos}+${s.len}@${s.slot}`).join(',')}`;
  const rng = prng(what);
  const step = stepOf(seqs);
  const N = step.ids.length, ctx = Math.max(...seqs.map(s => s.pos + s.len));
  const q = randn(N * H * D, rng), k = randn(N * KV * D, rng), v = randn(N * KV * D, rng);
  const kc = randn(SLOTS * ctx * KV * D, rng), vc = randn(SLOTS * ctx * KV * D, rng);   // cached prefixes (and garbage beyond)
  const table = ropeTable(invFreq(10000, D), ctx);
  await checkBoth(step, { states: [{ key: 'k', cols: ctx * KV * D }, { key: 'v', cols: ctx * KV * D }], slots: SLOTS, init: { k: kc, v: vc } }, async io => {
    const qt = io.o.act('q', H * D), kt = io.o.act('k', KV * D), vt = io.o.act('v', KV * D), out = io.o.act('out', H * D);
    io.put(qt, q); io.put(kt, k); io.put(vt, v); io.put(out);
    const tw = io.weight('rope', hostWeight(table, [2, ctx, D / 2]), false);
    await rope(io.o, qt, tw, { D, R: D });
    await rope(io.o, kt, tw, { D, R: D });
    await kvStore(io.o, kt, io.o.state('k'), ctx);
    await kvStore(io.o, vt, io.o.state('v'), ctx);
    await sdpa(io.o, qt, io.o.state('k'), io.o.state('v'), out, { H, KV, D, ctx, window });
    return { q: qt, k: kt, out, kc: io.o.state('k'), vc: io.o.state('v') };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('attention kernels', () => {
  for (const len of [1, 63, 64, 65]) {
    test(`D=64 GQA 2: prefill of ${len} tokens from an empty cache`, async () => {
      await attentionCase(4, 2, 64, [{ slot: 1, len, pos: 0 }]);
    });
  }
  test('D=128 MHA: decode steps of three sequences with cached prefixes 0, 70 and 129', async () => {
    await attentionCase(2, 2, 128, [{ slot: 0, len: 1, pos: 70 }, { slot: 2, len: 1, pos: 0 }, { slot: 1, len: 1, pos: 129 }]);
  });
  test('D=64 GQA 4: chunks continuing prefixes (pos 5 + 60, pos 64 + 3)', async () => {
    await attentionCase(8, 2, 64, [{ slot: 2, len: 60, pos: 5 }, { slot: 0, len: 3, pos: 64 }]);
  });
  test('D=128 GQA 2: 1000 tokens', async () => {
    await attentionCase(2, 1, 128, [{ slot: 0, len: 1000, pos: 0 }]);
  });
  test('D=64: sliding window 16 over a 40-token prefix', async () => {
    await attentionCase(2, 2, 64, [{ slot: 1, len: 9, pos: 40 }], 16);
  });
  test('partial rotary: R = D/4 leaves the other dims alone', async () => {
    const D = 64, R = 16, H = 2;
    const step = stepOf([{ slot: 0, len: 5, pos: 3 }]);
    const rng = prng('partial rope');
    const x = randn(5 * H * D, rng);
    const res = await checkBoth(step, { states: [], slots: 1 }, async io => {
      const t = io.o.act('x', H * D);
      io.put(t, x);
      await rope(io.o, t, io.weight('rope', hostWeight(ropeTable(invFreq(1e6, R), 16), [2, 16, R / 2]), false), { D, R });
      return { t };
    }, { seed: rng, what: 'partial rope' });
    const got = res.t!.data;
    for (let r = 0; r < 5 * H; r++) for (let i = R; i < D; i++) expect(got[r * D + i]).toBe(x[r * D + i]!);
  });
});

test('rope table: inv_freq matches torch fp32 for θ=10000, D=64 (spot values)', () => {
  const inv = invFreq(10000, 64);
  expect(inv[0]).toBe(1);
  expect(inv[1]).toBe(Math.fround(0.7498942093324559));
  expect(Math.abs(inv[31]! - 1.3335214e-4) / 1.3335214e-4).toBeLessThan(1e-6);
});
