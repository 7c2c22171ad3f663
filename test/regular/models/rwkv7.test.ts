// Golden tests of RWKV7 against fla's fp32 references: rwkv7-tiny logits and greedy tokens on every backend,
// cached decode after prefill, and the trained kjv-rwkv7 greedy generations.
import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelDir } from '../../../src/runtime/open.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { goldenSuite } from '../../helpers/golden.ts';
import { BACKENDS, engine, greedyBatch, reference } from '../../helpers/model.ts';

const kjv = sharedModel('kjv-rwkv7');

goldenSuite('rwkv7-tiny');

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
    // the weights byte for byte; the JSON files by content (the embedded tokenizer.json is stored minified)
    expect(Bun.hash(readFileSync(join(defaultModelDir(), 'model.safetensors')))).toBe(Bun.hash(readFileSync(join(kjv!, 'model.safetensors'))));
    for (const f of ['config.json', 'tokenizer.json'])
      expect(JSON.parse(readFileSync(join(defaultModelDir(), f), 'utf8')), f).toEqual(JSON.parse(readFileSync(join(kjv!, f), 'utf8')));
  });
});
