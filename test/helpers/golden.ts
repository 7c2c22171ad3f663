// The standard golden suite for a fixture checkpoint (../shared/fixtures/<name>): logits of every reference
// sequence, greedy decode against gen.tokens/gen.scores, prefill-then-decode equal to one pass, on each backend.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from './fixtures.ts';
import { BACKENDS, argmaxRows, engine, greedyBatch, reference, relErr } from './model.ts';

export function goldenSuite(name: string, opts: { tolerance?: number } = {}): void {
  const dir = fixture(name);
  const tol = opts.tolerance ?? 1e-4;
  describe.skipIf(!dir)(`${name} golden`, () => {
    for (const kind of BACKENDS) {
      test(`${kind}: logits of every reference sequence within ${tol}`, async () => {
        const ref = reference(dir!);
        const e = engine(dir!, kind);
        for (let i = 0; i < 6; i++) {
          const slot = e.acquire();
          const [got] = await e.run([{ slot, tokens: ref.ints(`input_ids.${i}`), keepAll: true }]);
          e.release(slot);
          expect(relErr(got!, ref.floats(`logits.${i}`)), `sequence ${i} (${ref.ints(`input_ids.${i}`).length} tokens)`).toBeLessThan(tol);
        }
      });

      test(`${kind}: cached greedy decode equals gen.tokens and gen.scores`, async () => {
        const ref = reference(dir!);
        const margin = JSON.parse(readFileSync(join(dir!, 'reference.json'), 'utf8')).min_greedy_margin as number;
        const e = engine(dir!, kind);
        const want = ref.ints('gen.tokens'), scores = ref.floats('gen.scores');
        const slot = e.acquire();
        let [logits] = await e.run([{ slot, tokens: ref.ints('gen.prompt') }]);
        const got: number[] = [];
        for (let t = 0; t < want.length; t++) {
          expect(relErr(logits!, scores.subarray(t * e.vocab, (t + 1) * e.vocab)), `decode step ${t}`).toBeLessThan(tol);
          got.push(argmaxRows(logits!, e.vocab)[0]!);
          [logits] = await e.run([{ slot, tokens: [want[t]!] }]);   // teacher-forced: a near-tie cannot derail the rest
        }
        e.release(slot);
        if (margin > 1e-3) expect(got).toEqual(want);
        else expect(got.filter((g, i) => g !== want[i]).length).toBeLessThanOrEqual(1);
      });

      test(`${kind}: prefill 70, decode 5, prefill the rest equals one pass over 130 tokens`, async () => {
        const ref = reference(dir!);
        const ids = ref.ints('input_ids.5');
        const e = engine(dir!, kind);
        const slot = e.acquire();
        const rows = [(await e.run([{ slot, tokens: ids.slice(0, 70), keepAll: true }]))[0]!];
        for (let t = 70; t < 75; t++) rows.push((await e.run([{ slot, tokens: [ids[t]!] }]))[0]!);
        rows.push((await e.run([{ slot, tokens: ids.slice(75), keepAll: true }]))[0]!);
        e.release(slot);
        const got = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
        let o = 0;
        for (const r of rows) { got.set(r, o); o += r.length; }
        expect(relErr(got, ref.floats('logits.5'))).toBeLessThan(tol);
      });
    }
  });
}

/** Packed batches equal one-by-one runs; batched greedy decode equals one-by-one; budget splits are exact (test/varlen). */
export function varlenSuite(name: string): void {
  const dir = fixture(name);
  describe.skipIf(!dir)(`${name} varlen`, () => {
    for (const kind of BACKENDS) {
      test(`${kind}: six sequences packed in one step equal each run alone (1e-5)`, async () => {
        const ref = reference(dir!);
        const e = engine(dir!, kind, 8, 4096);
        const seqs = [5, 0, 3, 1, 4, 2].map(i => ref.ints(`input_ids.${i}`));
        const alone: Float32Array[] = [];
        for (const s of seqs) {
          const slot = e.acquire();
          alone.push((await e.run([{ slot, tokens: s, keepAll: true }]))[0]!);
          e.release(slot);
        }
        const slots = seqs.map(() => e.acquire());
        const packed = await e.run(seqs.map((s, i) => ({ slot: slots[i]!, tokens: s, keepAll: true })));
        slots.forEach(s => e.release(s));
        seqs.forEach((s, i) => expect(relErr(packed[i]!, alone[i]!), `sequence of ${s.length} tokens`).toBeLessThan(1e-5));
      });

      test(`${kind}: batched greedy decode equals one-by-one, sequences finishing at different steps`, async () => {
        const ref = reference(dir!);
        const e = engine(dir!, kind, 8, 4096);
        const prompts = [ref.ints('input_ids.1'), ref.ints('gen.prompt'), ref.ints('input_ids.0'), ref.ints('input_ids.2').slice(0, 20)];
        const steps = [12, 5, 9, 1];
        const single: number[][] = [];
        for (let i = 0; i < prompts.length; i++) single.push((await greedyBatch(e, [prompts[i]!], [steps[i]!]))[0]!);
        expect(await greedyBatch(e, prompts, steps)).toEqual(single);
      });

      test(`${kind}: a step larger than the budget is split and still equals one pass`, async () => {
        const ref = reference(dir!);
        const whole = engine(dir!, kind, 2, 4096), split = engine(dir!, kind, 2, 64);
        const ids = ref.ints('input_ids.5');
        const a = (await whole.run([{ slot: whole.acquire(), tokens: ids, keepAll: true }]))[0]!;
        const b = (await split.run([{ slot: split.acquire(), tokens: ids, keepAll: true }]))[0]!;
        expect(relErr(b, a)).toBeLessThan(1e-5);
      });
    }
  });
}
