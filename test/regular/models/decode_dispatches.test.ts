// Dispatches of one greedy batch-1 decode step of the attention models (issue 15: ≤ 6 a layer + 6; 5 without q/k
// norm and biases), recorded on the GPU backend and counted with Engine.recordedDispatches. A layer is q|k|v (the norm in its prologue; RoPE and the
// KV-cache append in its epilogue where the layer has no q/k norm and no biases, else a rope_kv dispatch), sdpa,
// o-proj (+ residual), gate|up (norm prologue, SwiGLU epilogue) and down (+ residual); around the layers the head GEMV
// with the final norm in its prologue and argmax's first pass in its epilogue, and argmax's final pass (the embedding
// lookup runs in the first layer's q|k|v and o-proj where q|k|v is fused with RoPE, else as embed; gather_rows only
// where a step keeps some rows). With a cache of 256 rows sdpa runs as
// one dispatch; over 1024 rows decode takes sdpa's split-K variant, whose combine pass runs in o-proj's prologue
// with attn_out's fused variant (FLA_KERNEL_ATTN_OUT=fused: not yet the default): the same count.
import { describe, expect, test } from 'bun:test';
import { Engine } from '../../../src/runtime/engine.ts';
import { fixture } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { load } from '../../helpers/model.ts';

async function withFused<T>(on: boolean, f: () => Promise<T>): Promise<T> {
  const prev = process.env.FLA_KERNEL_ATTN_OUT;
  if (on) process.env.FLA_KERNEL_ATTN_OUT = 'fused';
  try { return await f(); } finally { if (prev === undefined) delete process.env.FLA_KERNEL_ATTN_OUT; else process.env.FLA_KERNEL_ATTN_OUT = prev; }
}

describe.skipIf(!HAS_GPU)('decode dispatches of the attention models', () => {
  for (const name of ['llama-tiny', 'qwen2-tiny', 'qwen3-tiny', 'transformer-tiny']) for (const ctx of [256, 1024]) {
    const dir = fixture(name);
    test.skipIf(!dir)(`${name}, a ${ctx}-row cache: ≤ 6 a layer + 6`, async () => {
      const model = load(dir!, 'gpu');
      const L = (model.cfg as { num_hidden_layers: number }).num_hidden_layers;
      const n = await withFused(ctx > 256, async () => {
        const e = new Engine(model, 1, 64, ctx);
        const slot = e.acquire();
        const first = await e.runArgmax([{ slot, tokens: [1, 2, 3] }]);
        await e.runArgmax([{ slot, tokens: [first[0]!.id] }]);   // the decode step, recorded
        return e.recordedDispatches(1, 1, 1, 'argmax');
      });
      expect(n, `${name}: no recorded decode step`).not.toBeNull();
      // without q/k norm and biases (Llama, these fla transformers) RoPE and the cache append run in the q|k|v GEMV (qkv_rope): 5 a layer
      const perLayer = name === 'llama-tiny' || name === 'transformer-tiny' ? 5 : 6;
      expect(n!, `${name}: ${n} dispatches for ${L} layers`).toBeLessThanOrEqual(perLayer * L + 6);
    }, 120_000);   // ms: cold shader JIT on lavapipe
  }
});
