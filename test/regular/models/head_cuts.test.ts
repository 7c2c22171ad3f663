// The output head's dispatch cuts (issue 15) in whole models: teacher-forced greedy decode with the device argmax
// (Engine.runArgmax: the head reads x itself at k = n, argmax's first pass in the head GEMV's epilogue, plain and
// zero-centred final RMSNorms in its prologue; the embedding lookup inside a Llama-style decoder's first layer) chooses
// gen.tokens, as the unfused path does (FLA_KEPT_VIEW=0 FLA_HEAD_ARGMAX=0 FLA_HEAD_NORM=0 FLA_EMBED_FOLD=0), and on the
// GPU a decode step records that many fewer dispatches: gather_rows and argmax's first pass everywhere, the final
// rms_norm where it was a dispatch of its own, and embed in Llama-style decoders.
import { afterEach, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from '../../helpers/fixtures.ts';
import { BACKENDS, engine, reference } from '../../helpers/model.ts';

const OLD = ['FLA_KEPT_VIEW', 'FLA_HEAD_ARGMAX', 'FLA_HEAD_NORM', 'FLA_EMBED_FOLD'];
afterEach(() => { for (const k of OLD) delete process.env[k]; });

/** Dispatches a decode step saves: gather_rows and argmax's first pass; the final norm's where it was plain or zero-centred; embed (Llama-style). */
const CUT: Record<string, number> = { 'llama-tiny': 3, 'transformer-tiny': 3, 'rwkv7-tiny': 2, 'gated_deltanet-tiny': 3, 'qwen3_next-tiny': 3 };

async function greedy(dir: string, kind: 'cpu' | 'gpu', cuts: boolean): Promise<{ got: number[]; dispatches: number | null }> {
  for (const k of OLD) if (cuts) delete process.env[k]; else process.env[k] = '0';
  const ref = reference(dir), want = ref.ints('gen.tokens');
  const e = engine(dir, kind);
  const slot = e.acquire();
  const got = [(await e.runArgmax([{ slot, tokens: ref.ints('gen.prompt') }]))[0]!.id];
  for (let t = 0; t + 1 < want.length; t++) got.push((await e.runArgmax([{ slot, tokens: [want[t]!] }]))[0]!.id);   // teacher-forced
  e.release(slot);
  return { got, dispatches: e.recordedDispatches(1, 1, 1, 'argmax') };
}

for (const name of Object.keys(CUT)) {
  const dir = fixture(name);
  describe.skipIf(!dir)(`${name}: the output head's cuts`, () => {
    for (const kind of BACKENDS) {
      test(`${kind}: device-greedy decode equals gen.tokens with and without them${kind === 'gpu' ? `; ${CUT[name]} dispatches fewer a step` : ''}`, async () => {
        const want = reference(dir!).ints('gen.tokens');
        const margin = JSON.parse(readFileSync(join(dir!, 'reference.json'), 'utf8')).min_greedy_margin as number;
        const now = await greedy(dir!, kind, true), before = await greedy(dir!, kind, false);
        for (const r of [now, before]) {
          if (margin > 1e-3) expect(r.got).toEqual(want);
          else expect(r.got.filter((g, i) => g !== want[i]).length).toBeLessThanOrEqual(1);
        }
        if (kind === 'gpu') {
          expect(now.dispatches, 'a recorded decode step').not.toBeNull();
          expect(before.dispatches! - now.dispatches!, `${before.dispatches} → ${now.dispatches}`).toBe(CUT[name]!);
        }
      }, 600_000);   // ms: cold shader JIT on lavapipe
    }
  });
}
