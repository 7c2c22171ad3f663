// abc (kernels/abc/abc_recurrent.wgsl) against abc.ref.ts: key/value head dims 64 and 128, slot counts 32 and 64
// (and more slots than a workgroup has threads), three sequences of lengths 7, 1 and 65 on different slots with
// nonzero initial state (Hk, Hv, z), one of them starting fresh (pos 0: z restarts), one more slot untouched.
// Compares o and the whole state.
import { describe, test } from 'bun:test';
import type { Cursor } from '../../../src/backend/backend.ts';
import { prng, randn } from '../../helpers/allclose.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { checkBoth, type StepSpec } from './harness.ts';
import { abc } from '../../../kernels/abc/abc.ts';
import { abcStateCols } from '../../../kernels/abc/abc.ref.ts';

const SLOTS = 4;

function step(seqs: { slot: number; len: number; pos: number }[]): StepSpec {
  const cursors: Cursor[] = [];
  let start = 0;
  for (const s of seqs) { cursors.push({ slot: s.slot, start, len: s.len, pos: s.pos }); start += s.len; }
  return { ids: Array.from({ length: start }, (_, i) => i % 7), cursors, keep: cursors.map(c => c.start + c.len - 1) };
}

async function runCase(DK: number, DV: number, M: number, H = 2,
  seqs = [{ slot: 2, len: 7, pos: 5 }, { slot: 0, len: 1, pos: 3 }, { slot: 3, len: 65, pos: 0 }]): Promise<void> {
  const what = `abc DK=${DK} DV=${DV} M=${M} H=${H} seqs ${seqs.map(s => `${s.len}@${s.slot}+${s.pos}`).join(',')}`;
  const rng = prng(what);
  const st = step(seqs);
  const N = st.ids.length;
  const d = { H, DK, DV, M };
  const cols = abcStateCols(d);
  const state = randn(SLOTS * cols, rng, 0.3);
  for (let s = 0; s < SLOTS; s++) for (let i = 0; i < H * M; i++) state[s * cols + H * (DK * M + M * DV) + i] = rng.uniform(0, 4);   // z
  const sv = randn(N * H * M, rng, 12);   // some beyond the ±32 clamp
  const qv = randn(N * H * DK, rng), kv = randn(N * H * DK, rng), vv = randn(N * H * DV, rng);
  await checkBoth(st, { states: [{ key: 'S', cols }], slots: SLOTS, init: { S: state } }, async io => {
    const q = io.o.act('q', H * DK), k = io.o.act('k', H * DK), v = io.o.act('v', H * DV), s = io.o.act('s', H * M), o = io.o.act('o', H * DV);
    io.put(q, qv); io.put(k, kv); io.put(v, vv); io.put(s, sv); io.put(o);
    const S = io.o.state('S');
    await abc(io.o, { q, k, v, s, state: S, out: o, ...d, scale: DK ** -0.5, clampMin: -32, clampMax: 32 });
    return { o, state: S };
  }, { seed: rng, what });
}

describe.skipIf(!HAS_GPU)('abc', () => {
  for (const D of [64, 128]) for (const M of [32, 64]) test(`DK=DV=${D}, M=${M}`, () => runCase(D, D, M));
  test('DK=32 DV=64 M=32 (abc-tiny shapes)', () => runCase(32, 64, 32));
  test('DK=64 DV=512 M=128 (two value columns per thread)', () => runCase(64, 512, 128, 1));
  test('decode: one token in each of four slots, one of them fresh', () =>
    runCase(64, 64, 32, 2, [{ slot: 3, len: 1, pos: 9 }, { slot: 1, len: 1, pos: 0 }, { slot: 0, len: 1, pos: 1 }, { slot: 2, len: 1, pos: 40 }]));
});
