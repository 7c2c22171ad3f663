// Dispatches of one greedy batch-1 decode step of the attention models (issue 15: ≤ 6 a layer + 6), recorded on the
// GPU backend and counted with Engine.recordedDispatches. A layer is q|k|v (the norm in its prologue), rope_kv, sdpa,
// o-proj (+ residual), gate|up (norm prologue, SwiGLU epilogue) and down (+ residual); around the layers embed,
// gather_rows, the head GEMV with the final norm in its prologue and argmax. The cache here is 256 rows, where sdpa
// runs as one dispatch; over longer caches decode takes sdpa's split-K variant (split + combine: one more a layer).
import { describe, expect, test } from 'bun:test';
import { Engine } from '../../../src/runtime/engine.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { load } from '../../helpers/model.ts';

describe.skipIf(!HAS_GPU)('decode dispatches of the attention models', () => {
  for (const name of ['llama-tiny', 'qwen2-tiny', 'qwen3-tiny', 'transformer-tiny']) {
    const dir = fixture(name);
    test.skipIf(!dir)(`${name}: ≤ 6 a layer + 6`, async () => {
      const model = load(dir!, 'gpu');
      const L = (model.cfg as { num_hidden_layers: number }).num_hidden_layers;
      const e = new Engine(model, 1, 64, 256);
      const slot = e.acquire();
      const first = await e.runArgmax([{ slot, tokens: [1, 2, 3] }]);
      await e.runArgmax([{ slot, tokens: [first[0]!.id] }]);   // the decode step, recorded
      const n = e.recordedDispatches(1, 1, 1, 'argmax');
      expect(n, `${name}: no recorded decode step`).not.toBeNull();
      expect(n!, `${name}: ${n} dispatches for ${L} layers`).toBeLessThanOrEqual(6 * L + 6);
    });
  }
});
