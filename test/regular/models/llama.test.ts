// Golden tests of `llama` against the reference implementation's fp32 outputs (../shared/fixtures/llama-tiny).
import { goldenSuite } from '../../helpers/golden.ts';

goldenSuite('llama-tiny');

import { describe, expect, test } from 'bun:test';
import { sharedModel } from '../../helpers/fixtures.ts';
import { BACKENDS, engine, greedyBatch, reference } from '../../helpers/model.ts';

const kjv = sharedModel('kjv-llama');
describe.skipIf(!kjv)('kjv-llama golden', () => {
  const kind = BACKENDS.at(-1)!;
  test(`${kind}: greedy generations gen.0-2 (64 tokens each, decoded together) equal the reference`, async () => {
    const ref = reference(kjv!);
    const got = await greedyBatch(engine(kjv!, kind), [0, 1, 2].map(g => ref.ints(`gen.${g}.prompt`)), [64, 64, 64]);
    for (let g = 0; g < 3; g++) expect(got[g], `gen.${g}`).toEqual(ref.ints(`gen.${g}.tokens`));
  });
});
