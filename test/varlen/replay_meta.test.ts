// A replayed decode step after the step-metadata buffer grew (many short sequences in one step, no activation
// growth): the recording must not bind the destroyed buffer. Found by the prompt-state cache's chat benchmark.
import { describe, expect, test } from 'bun:test';
import { fixture } from '../helpers/fixtures.ts';
import { HAS_GPU } from '../helpers/gpu.ts';
import { engine, relErr } from '../helpers/model.ts';

const dir = fixture('rwkv7-tiny');

describe.skipIf(!dir || !HAS_GPU)('step replay after the meta buffer grows (gpu)', () => {
  test('decode logits equal a run without replay', async () => {
    const run = async () => {
      const e = engine(dir!, 'gpu', 33, 4096);
      const slots = Array.from({ length: 33 }, () => e.acquire());
      const tok = (i: number) => (i * 37 + 11) % 200;
      await e.run([{ slot: slots[0]!, tokens: Array.from({ length: 100 }, (_, i) => tok(i)) }]);     // capacity 128 rows, small meta
      await e.run([{ slot: slots[0]!, tokens: [5] }]);                                              // a decode step: recorded
      await e.run([{ slot: slots[0]!, tokens: [6] }]);                                              // replayed
      await e.run(slots.slice(1).map((slot, j) => ({ slot, tokens: [tok(j), tok(j + 1), tok(j + 2), tok(j + 3)] })));   // 128 rows, 32 sequences: meta grows
      return (await e.run([{ slot: slots[0]!, tokens: [7] }]))[0]!;                                 // replayed again
    };
    const replayed = await run();
    process.env.FLA_NO_REPLAY = '1';
    try {
      const fresh = await run();
      expect(relErr(replayed, fresh)).toBeLessThan(1e-6);
    } finally { delete process.env.FLA_NO_REPLAY; }
  });
});
