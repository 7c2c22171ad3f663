// The golden checks shared by the gla, linear_attn and abc fixture tests (the rwkv7 test's three checks):
// logits of reference sequences within 1e-4, greedy decode against gen.tokens/gen.scores (each step after the
// first is a cached decode, the reference computed with full forward passes), prefill k then decode m equal
// to the uncached logits of k+m.
import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKENDS, argmaxRows, engine, reference, relErr } from '../../helpers/model.ts';

export function goldenSuite(dir: string): void {
  for (const kind of BACKENDS) {
    test(`${kind}: logits of every reference sequence within 1e-4`, async () => {
      const ref = reference(dir);
      const e = engine(dir, kind);
      for (let i = 0; i < 6; i++) {
        const slot = e.acquire();
        const [got] = await e.run([{ slot, tokens: ref.ints(`input_ids.${i}`), keepAll: true }]);
        e.release(slot);
        const err = relErr(got!, ref.floats(`logits.${i}`));
        if (process.env.FLA_TEST_VERBOSE === '1') console.log(`${kind} sequence ${i}: ${err.toExponential(2)}`);
        expect(err, `sequence ${i} (${ref.ints(`input_ids.${i}`).length} tokens)`).toBeLessThan(1e-4);
      }
    });

    test(`${kind}: greedy decode equals gen.tokens and its scores`, async () => {
      const ref = reference(dir);
      const margin = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')).min_greedy_margin as number;
      const e = engine(dir, kind);
      const want = ref.ints('gen.tokens'), scores = ref.floats('gen.scores');
      const slot = e.acquire();
      let [logits] = await e.run([{ slot, tokens: ref.ints('gen.prompt') }]);
      const got: number[] = [];
      for (let t = 0; t < want.length; t++) {
        expect(relErr(logits!, scores.subarray(t * e.vocab, (t + 1) * e.vocab)), `decode step ${t}`).toBeLessThan(1e-4);
        got.push(argmaxRows(logits!, e.vocab)[0]!);
        [logits] = await e.run([{ slot, tokens: [want[t]!] }]);   // teacher-forced, so one near-tie cannot derail the rest
      }
      e.release(slot);
      if (margin > 1e-3) expect(got).toEqual(want);
      else expect(got.filter((g, i) => g !== want[i]).length).toBeLessThanOrEqual(1);
    });

    test(`${kind}: prefill k then decode m equals prefill k+m (cached decode = uncached logits)`, async () => {
      const ref = reference(dir);
      const ids = ref.ints('input_ids.5');   // 130 tokens
      const e = engine(dir, kind);
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
}
