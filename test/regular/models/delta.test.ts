// Golden tests of the delta-rule families against fla's fp32 references (gated_deltanet-tiny, delta_net-tiny):
// logits of every reference sequence, teacher-forced greedy decode with its scores, and cached decode after a
// prefill (chunked when longer than one chunk) equal to the uncached logits, on every backend.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from '../../helpers/fixtures.ts';
import { BACKENDS, argmaxRows, engine, reference, relErr } from '../../helpers/model.ts';

for (const name of ['gated_deltanet-tiny', 'delta_net-tiny']) {
  const tiny = fixture(name);
  describe.skipIf(!tiny)(`${name} golden`, () => {
    for (const kind of BACKENDS) {
      test(`${kind}: logits of every reference sequence within 1e-4`, async () => {
        const ref = reference(tiny!);
        const e = engine(tiny!, kind);
        for (let i = 0; i < 6; i++) {
          const slot = e.acquire();
          const [got] = await e.run([{ slot, tokens: ref.ints(`input_ids.${i}`), keepAll: true }]);
          e.release(slot);
          const err = relErr(got!, ref.floats(`logits.${i}`));
          if (process.env.FLA_TEST_VERBOSE === '1') console.log(`${name} ${kind} sequence ${i}: ${err.toExponential(2)}`);
          expect(err, `sequence ${i} (${ref.ints(`input_ids.${i}`).length} tokens)`).toBeLessThan(1e-4);
        }
      });

      test(`${kind}: greedy decode equals gen.tokens and its scores`, async () => {
        const ref = reference(tiny!);
        const margin = JSON.parse(readFileSync(join(tiny!, 'reference.json'), 'utf8')).min_greedy_margin as number;
        const e = engine(tiny!, kind);
        const want = ref.ints('gen.tokens'), scores = ref.floats('gen.scores');
        const slot = e.acquire();
        let [logits] = await e.run([{ slot, tokens: ref.ints('gen.prompt') }]);
        const got: number[] = [];
        for (let t = 0; t < want.length; t++) {
          expect(relErr(logits!, scores.subarray(t * e.vocab, (t + 1) * e.vocab)), `decode step ${t}`).toBeLessThan(1e-4);
          got.push(argmaxRows(logits!, e.vocab)[0]!);
          [logits] = await e.run([{ slot, tokens: [want[t]!] }]);   // teacher-forced
        }
        e.release(slot);
        if (margin > 1e-3) expect(got).toEqual(want);
        else expect(got.filter((g, i) => g !== want[i]).length).toBeLessThanOrEqual(1);
      });

      test(`${kind}: prefill 70 (chunked) then decode 5 then prefill 55 equals the uncached logits`, async () => {
        const ref = reference(tiny!);
        const ids = ref.ints('input_ids.5');   // 130 tokens
        const e = engine(tiny!, kind);
        const slot = e.acquire();
        const [head] = await e.run([{ slot, tokens: ids.slice(0, 70), keepAll: true }]);
        const rows = [head!];
        for (let t = 70; t < 75; t++) rows.push((await e.run([{ slot, tokens: [ids[t]!] }]))[0]!);
        const [rest] = await e.run([{ slot, tokens: ids.slice(75), keepAll: true }]);
        rows.push(rest!);
        e.release(slot);
        const got = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
        let o = 0;
        for (const r of rows) { got.set(r, o); o += r.length; }
        expect(relErr(got, ref.floats('logits.5'))).toBeLessThan(1e-4);
      });
    }
  });
}
