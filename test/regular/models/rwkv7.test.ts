// Golden tests of RWKV7 against fla's fp32 references: rwkv7-tiny logits and greedy tokens on every backend,
// cached decode after prefill, and the trained kjv-rwkv7 greedy generations.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelDir } from '../../../src/runtime/open.ts';
import { fixture, sharedModel } from '../../helpers/fixtures.ts';
import { BACKENDS, argmaxRows, engine, greedyBatch, reference, relErr } from '../../helpers/model.ts';

const tiny = fixture('rwkv7-tiny');
const kjv = sharedModel('kjv-rwkv7');

describe.skipIf(!tiny)('rwkv7-tiny golden', () => {
  for (const kind of BACKENDS) {
    test(`${kind}: logits of every reference sequence within 1e-4`, async () => {
      const ref = reference(tiny!);
      const e = engine(tiny!, kind);
      for (let i = 0; i < 6; i++) {
        const slot = e.acquire();
        const [got] = await e.run([{ slot, tokens: ref.ints(`input_ids.${i}`), keepAll: true }]);
        e.release(slot);
        const err = relErr(got!, ref.floats(`logits.${i}`));
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
        const id = argmaxRows(logits!, e.vocab)[0]!;
        got.push(id);
        [logits] = await e.run([{ slot, tokens: [want[t]!] }]);   // teacher-forced, so one near-tie cannot derail the rest
      }
      e.release(slot);
      if (margin > 1e-3) expect(got).toEqual(want);
      else expect(got.filter((g, i) => g !== want[i]).length).toBeLessThanOrEqual(1);
    });

    test(`${kind}: prefill k then decode m equals prefill k+m`, async () => {
      const ref = reference(tiny!);
      const ids = ref.ints('input_ids.5');   // 130 tokens
      const e = engine(tiny!, kind);
      const slot = e.acquire();
      const [head] = await e.run([{ slot, tokens: ids.slice(0, 70), keepAll: true }]);
      const rows = [head!];
      for (let t = 70; t < 75; t++) rows.push((await e.run([{ slot, tokens: [ids[t]!] }]))[0]!);
      const [rest] = await e.run([{ slot, tokens: ids.slice(75) , keepAll: true }]);
      rows.push(rest!);
      e.release(slot);
      const got = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
      let o = 0;
      for (const r of rows) { got.set(r, o); o += r.length; }
      expect(relErr(got, ref.floats('logits.5'))).toBeLessThan(1e-4);
    });
  }
});

describe.skipIf(!kjv)('kjv-rwkv7 golden', () => {
  const kind = BACKENDS.at(-1)!;   // the GPU when there is one (the CPU backend is checked on rwkv7-tiny)
  test(`${kind}: greedy generations gen.0-2 (64 tokens each, decoded together) equal the reference`, async () => {
    const ref = reference(kjv!);
    const e = engine(defaultModelDir(), kind);
    const prompts = [0, 1, 2].map(g => ref.ints(`gen.${g}.prompt`));
    const got = await greedyBatch(e, prompts, [64, 64, 64]);
    for (let g = 0; g < 3; g++) expect(got[g], `gen.${g}`).toEqual(ref.ints(`gen.${g}.tokens`));
  });

  test('the embedded default model is the shared kjv-rwkv7', () => {
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors'])
      expect(Bun.hash(readFileSync(join(defaultModelDir(), f))), f).toBe(Bun.hash(readFileSync(join(kjv!, f))));
  });
});
