// fla serve with the prompt-state cache (in-process, default model, GPU if any): a multi-turn chat that resends
// its history gives the replies of a server without the cache, usage.prompt_tokens counts every prompt token and
// prompt_tokens_details.cached_tokens the restored ones, and /metrics shows the cache's counters.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Engine } from '../../../src/runtime/engine.ts';
import { PrefixCache } from '../../../src/runtime/prefix_cache.ts';
import { Scheduler } from '../../../src/runtime/scheduler.ts';
import { startServer, type FlaServer } from '../../../src/serve/http.ts';
import { ChatTemplate, encodeChat, type Message } from '../../../src/tokenizer/chat.ts';
import { HfTokenizer } from '../../../src/tokenizer/hf.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { load } from '../../helpers/model.ts';
import { metric, post, stream } from './client.ts';

const kjv = sharedModel('kjv-rwkv7');
const KIND = HAS_GPU ? 'gpu' : 'cpu';
const TEMPLATE = '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';
const TURNS = ['In the beginning', 'And the earth was without form', 'Let there be light', 'And God saw the light', 'Amen'];

function serve(withCache: boolean): { server: FlaServer; tokenizer: HfTokenizer; template: ChatTemplate } {
  const engine = new Engine(load(kjv!, KIND), 2, 512);
  const tokenizer = HfTokenizer.load(kjv!);
  const prefixCache = withCache ? new PrefixCache(engine.model.backend, { maxBytes: 64 << 20, interval: 16 }) : undefined;
  const scheduler = new Scheduler(engine, tokenizer, { maxQueue: 8, eosIds: [0], prefixCache });
  const template = new ChatTemplate(TEMPLATE, {});
  const server = startServer({ scheduler, tokenizer, template, modelName: 'test-model', host: '127.0.0.1', port: 0, defaultMaxTokens: 8 });
  return { server, tokenizer, template };
}

describe.skipIf(!kjv)(`fla serve with the state cache (${KIND})`, () => {
  let on: ReturnType<typeof serve>, off: ReturnType<typeof serve>;
  beforeAll(() => { on = serve(true); off = serve(false); });
  afterAll(async () => { await on?.server.shutdown(5000); await off?.server.shutdown(5000); });

  test('a chat resending its history: same replies, all prompt tokens counted, the restored ones as cached_tokens', async () => {
    const messages: Message[] = [];
    let cachedSum = 0, promptSum = 0;
    for (const [i, content] of TURNS.entries()) {
      messages.push({ role: 'user', content });
      const body = { messages, max_tokens: 8, temperature: 0 };
      const [a, b] = [await post(`${on.server.url}/v1/chat/completions`, body), await post(`${off.server.url}/v1/chat/completions`, body)];
      expect(a.status).toBe(200);
      expect(a.json.choices[0].message.content, `turn ${i}`).toBe(b.json.choices[0].message.content);
      const promptLen = encodeChat(on.tokenizer, on.template, messages).length;
      expect(a.json.usage.prompt_tokens).toBe(promptLen);
      expect(b.json.usage).toEqual({ ...a.json.usage, prompt_tokens_details: { cached_tokens: 0 } });
      const cached = a.json.usage.prompt_tokens_details.cached_tokens;
      if (i === 0) expect(cached).toBe(0);
      else expect(cached).toBeGreaterThan(0);
      expect(cached).toBeLessThan(promptLen);
      cachedSum += cached; promptSum += promptLen;
      messages.push({ role: 'assistant', content: a.json.choices[0].message.content });
    }
    // streamed, with the usage chunk: the same field
    messages.push({ role: 'user', content: 'Jesus wept.' });
    const s = await stream(`${on.server.url}/v1/chat/completions`, { messages, max_tokens: 4, temperature: 0, stream_options: { include_usage: true } });
    const usage = JSON.parse(s.frames.at(-2)!).usage;
    expect(usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    cachedSum += usage.prompt_tokens_details.cached_tokens;

    const text = await (await fetch(`${on.server.url}/metrics`)).text();
    expect(metric(text, 'fla_prefix_cache_hits_total')).toBe(TURNS.length);
    expect(metric(text, 'fla_prefix_cache_misses_total')).toBe(1);
    expect(metric(text, 'fla_prefill_tokens_saved_total')).toBe(cachedSum);
    const bytes = metric(text, 'fla_prefix_cache_bytes');
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(64 << 20);
    expect(metric(text, 'fla_prompt_tokens_total') + cachedSum).toBe(promptSum + usage.prompt_tokens);
    const plain = await (await fetch(`${off.server.url}/metrics`)).text();
    expect(plain).not.toContain('fla_prefix_cache');
  });
});
