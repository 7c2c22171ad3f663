// The chunked variants on whole models: on a CPU adapter (lavapipe) delta_rule, gla and wkv7 select their recurrent
// variant, so the golden suites there never run the chunked prefill. Here each chunked family's fixture runs its
// reference sequences with FLA_KERNEL_<OP>=chunk forced (sequences longer than one chunk of 64) on the GPU
// against the fp32 reference logits, and a packed step that mixes a long prompt with one-token decodes.
import { describe, expect, test } from 'bun:test';
import { fixture } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { engine, reference, relErr } from '../../helpers/model.ts';

const CASES = [
  { name: 'gated_deltanet-tiny', knob: 'FLA_KERNEL_DELTA_RULE' },
  { name: 'delta_net-tiny', knob: 'FLA_KERNEL_DELTA_RULE' },
  { name: 'qwen3_next-tiny', knob: 'FLA_KERNEL_DELTA_RULE' },
  { name: 'gla-tiny', knob: 'FLA_KERNEL_GLA' },
  { name: 'rwkv7-tiny', knob: 'FLA_KERNEL_WKV7' },
];

async function forced<T>(knob: string, value: string, f: () => Promise<T>): Promise<T> {
  const prev = process.env[knob];
  process.env[knob] = value;
  try { return await f(); } finally { if (prev === undefined) delete process.env[knob]; else process.env[knob] = prev; }
}

for (const c of CASES) {
  const dir = fixture(c.name);
  describe.skipIf(!HAS_GPU || !dir)(`${c.name} chunked prefill (${c.knob}=chunk)`, () => {
    test('logits of every reference sequence longer than one chunk within 1e-4', () => forced(c.knob, 'chunk', async () => {
      const ref = reference(dir!), e = engine(dir!, 'gpu');
      let long = 0;
      for (let i = 0; i < 6; i++) {
        const ids = ref.ints(`input_ids.${i}`);
        if (ids.length <= 64) continue;
        long++;
        const slot = e.acquire();
        const [got] = await e.run([{ slot, tokens: ids, keepAll: true }]);
        e.release(slot);
        expect(relErr(got!, ref.floats(`logits.${i}`)), `sequence ${i} (${ids.length} tokens)`).toBeLessThan(1e-4);
      }
      expect(long).toBeGreaterThan(0);
    }));

    test('a step packing a long prompt with one-token decodes equals the recurrent variant (1e-5)', async () => {
      const ref = reference(dir!);
      const prompt = [0, 1, 2, 3, 4, 5].map(i => ref.ints(`input_ids.${i}`)).sort((x, y) => y.length - x.length)[0]!;
      expect(prompt.length).toBeGreaterThan(64);
      const run = (v: string) => forced(c.knob, v, async () => {
        const e = engine(dir!, 'gpu');
        const a = e.acquire(), b = e.acquire(), d = e.acquire();
        await e.run([{ slot: b, tokens: prompt.slice(0, 5) }, { slot: d, tokens: prompt.slice(5, 9) }]);
        return e.run([{ slot: b, tokens: [prompt[9]!] }, { slot: a, tokens: prompt, keepAll: true }, { slot: d, tokens: [prompt[10]!] }]);
      });
      const chunk = await run('chunk'), rec = await run('recurrent');
      for (let i = 0; i < 3; i++) expect(relErr(chunk[i]!, rec[i]!), `sequence ${i}`).toBeLessThan(1e-5);
    });
  });
}
