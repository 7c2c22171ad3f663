// Variable-length batching: the delta-rule tiny reference sequences (gated_deltanet, delta_net) packed into one step give the same logits as
// each alone, and a batched greedy decode (sequences finishing at different steps) gives the one-by-one tokens.
import { describe, expect, test } from 'bun:test';
import { fixture } from '../helpers/fixtures.ts';
import { BACKENDS, engine, greedyBatch, reference, relErr } from '../helpers/model.ts';

for (const name of ['gated_deltanet-tiny', 'delta_net-tiny']) {
  const tiny = fixture(name);

  describe.skipIf(!tiny)(`${name} varlen`, () => {
    for (const kind of BACKENDS) {
      test(`${kind}: six sequences packed in one step equal each run alone (1e-5)`, async () => {
        const ref = reference(tiny!);
        const e = engine(tiny!, kind, 8, 4096);
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
        const ref = reference(tiny!);
        const e = engine(tiny!, kind, 8, 4096);
        const prompts = [ref.ints('input_ids.1'), ref.ints('gen.prompt'), ref.ints('input_ids.0'), ref.ints('input_ids.2').slice(0, 20)];
        const steps = [12, 5, 9, 1];
        const single: number[][] = [];
        for (let i = 0; i < prompts.length; i++) single.push((await greedyBatch(e, [prompts[i]!], [steps[i]!]))[0]!);
        const batched = await greedyBatch(e, prompts, steps);
        expect(batched).toEqual(single);
      });

      test(`${kind}: a step larger than the budget is split and still equals one pass`, async () => {
        const ref = reference(tiny!);
        const whole = engine(tiny!, kind, 2, 4096), split = engine(tiny!, kind, 2, 64);
        const ids = ref.ints('input_ids.5');
        const a = (await whole.run([{ slot: whole.acquire(), tokens: ids, keepAll: true }]))[0]!;
        const b = (await split.run([{ slot: split.acquire(), tokens: ids, keepAll: true }]))[0]!;
        expect(relErr(b, a)).toBeLessThan(1e-5);
      });
    }
  });
}
