// The HTTP server in-process on 127.0.0.1 (random port), default model on the GPU if any: concurrent streams
// equal serial runs, disconnects free slots, bad requests get OpenAI-style 400s, 404, 429, /health, /metrics.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Engine } from '../../../src/runtime/engine.ts';
import { generate } from '../../../src/runtime/generate.ts';
import { validateSampling } from '../../../src/runtime/sample.ts';
import { Scheduler } from '../../../src/runtime/scheduler.ts';
import { startServer, type FlaServer } from '../../../src/serve/http.ts';
import type { RequestLimits } from '../../../src/serve/openai.ts';
import { ChatTemplate } from '../../../src/tokenizer/chat.ts';
import { HfTokenizer } from '../../../src/tokenizer/hf.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { HAS_GPU } from '../../helpers/gpu.ts';
import { load } from '../../helpers/model.ts';
import { metric, post, stream, streamText, until } from './client.ts';

const kjv = sharedModel('kjv-rwkv7');
const llama = sharedModel('kjv-llama');
const KIND = HAS_GPU ? 'gpu' : 'cpu';
const TEXTS = [
  'In the beginning', 'Jesus wept.', 'The LORD is my shepherd; I shall not want.', 'And God said,',
  'Blessed are the poor in spirit: for theirs is the kingdom of heaven.', 'Behold,', 'For God so loved the world,',
  'And the earth was without form, and void; and darkness was upon the face of the deep.',
];
const MAX = [6, 9, 4, 12, 7, 10, 5, 8];
const TEMPLATE = '{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';

function serve(dir: string, kind: 'gpu' | 'cpu', slots: number, maxQueue: number, opts: { ctx?: number; template?: boolean; limits?: RequestLimits } = {}) {
  const engine = new Engine(load(dir, kind), slots, 512, opts.ctx);
  const tokenizer = HfTokenizer.load(dir);
  const scheduler = new Scheduler(engine, tokenizer, { maxQueue, eosIds: [0] });
  const template = opts.template ? new ChatTemplate(TEMPLATE, {}) : null;
  const server = startServer({ scheduler, tokenizer, template, modelName: 'test-model', host: '127.0.0.1', port: 0, defaultMaxTokens: 16, limits: opts.limits });
  return { engine, tokenizer, scheduler, server };
}

describe.skipIf(!kjv)(`fla serve in-process (${KIND})`, () => {
  let s: ReturnType<typeof serve>;
  let url: string;
  beforeAll(() => { s = serve(kjv!, KIND, 4, 8, { template: true }); url = s.server.url; });
  afterAll(async () => { await s?.server.shutdown(5000); });

  test('8 concurrent streaming requests of different lengths give the serial texts', async () => {
    const greedy = validateSampling({ temperature: 0 });
    const serial: string[] = [];
    for (let i = 0; i < TEXTS.length; i++) {     // before any request: the engine is idle
      let text = '';
      for await (const p of generate(s.engine, s.tokenizer, s.tokenizer.encode(TEXTS[i]!), { maxTokens: MAX[i]!, sampling: greedy, eosIds: [0] })) text += p.text;
      serial.push(text);
    }
    const got = await Promise.all(TEXTS.map((prompt, i) => stream(`${url}/v1/completions`, { prompt, max_tokens: MAX[i], temperature: 0 })));
    got.forEach((g, i) => {
      expect(g.status).toBe(200);
      expect(streamText(g.frames).text, `request ${i}`).toBe(serial[i]!);
    });
    const one = await post(`${url}/v1/completions`, { prompt: TEXTS[3], max_tokens: MAX[3], temperature: 0 });
    expect(one.status).toBe(200);
    expect(one.json.choices[0].text).toBe(serial[3]!);
    expect(one.json.object).toBe('text_completion');
    expect(one.json.usage).toEqual({ prompt_tokens: s.tokenizer.encode(TEXTS[3]!).length, completion_tokens: MAX[3], total_tokens: s.tokenizer.encode(TEXTS[3]!).length + MAX[3]!, prompt_tokens_details: { cached_tokens: 0 } });
    expect(one.json.choices[0].finish_reason).toBe('length');
  });

  test('chat completions use the template; streaming ends with usage when asked', async () => {
    const messages = [{ role: 'user', content: 'Who made the earth?' }];
    const a = await post(`${url}/v1/chat/completions`, { messages, max_tokens: 6, temperature: 0 });
    expect(a.status).toBe(200);
    expect(a.json.object).toBe('chat.completion');
    const b = await post(`${url}/v1/completions`, { prompt: 'user: Who made the earth?\nassistant:', max_tokens: 6, temperature: 0 });
    expect(a.json.choices[0].message).toEqual({ role: 'assistant', content: b.json.choices[0].text });
    const c = await stream(`${url}/v1/chat/completions`, { messages, max_tokens: 6, temperature: 0, stream_options: { include_usage: true } });
    expect(streamText(c.frames).text).toBe(b.json.choices[0].text);
    expect(JSON.parse(c.frames[0]!).choices[0].delta.role).toBe('assistant');
    expect(JSON.parse(c.frames.at(-2)!).usage).toEqual(b.json.usage);
  });

  test('a client that disconnects mid-stream frees its slot', async () => {
    const m0 = await (await fetch(`${url}/metrics`)).text();
    const cancelled0 = metric(m0, 'fla_requests_finished_total{reason="cancelled"}');
    const r = await stream(`${url}/v1/completions`, { prompt: 'In the beginning', max_tokens: 2000, temperature: 0 }, { stopAfter: 2 });
    expect(r.frames.length).toBe(2);
    const freed = await until(async () => {
      const m = await (await fetch(`${url}/metrics`)).text();
      return metric(m, 'fla_running_requests') === 0 && metric(m, 'fla_requests_finished_total{reason="cancelled"}') === cancelled0 + 1;
    });
    expect(freed).toBe(true);
    expect(s.scheduler.stats().generatedTokens).toBeLessThan(1000);
  });

  const BAD: [string, unknown, string | null][] = [
    ['malformed JSON', '{"prompt": "x",', null],
    ['not an object', '[1, 2]', null],
    ['no prompt', { max_tokens: 3 }, 'prompt'],
    ['empty prompt', { prompt: '' }, 'prompt'],
    ['temperature type', { prompt: 'x', temperature: 'hot' }, 'temperature'],
    ['negative temperature', { prompt: 'x', temperature: -1 }, 'temperature'],
    ['top_p out of range', { prompt: 'x', top_p: 1.5 }, 'top_p'],
    ['min_p out of range', { prompt: 'x', min_p: 2 }, 'min_p'],
    ['fractional top_k', { prompt: 'x', top_k: 2.5 }, 'top_k'],
    ['negative max_tokens', { prompt: 'x', max_tokens: -1 }, 'max_tokens'],
    ['seed type', { prompt: 'x', seed: 'abc' }, 'seed'],
    ['stop type', { prompt: 'x', stop: 5 }, 'stop'],
    ['stream type', { prompt: 'x', stream: 'yes' }, 'stream'],
    ['n > 1', { prompt: 'x', n: 2 }, 'n'],
    ['token id out of range', { prompt: [1, 2, 999999] }, 'prompt'],
  ];
  for (const [what, body, param] of BAD) {
    test(`400 for ${what}; the next good request still succeeds`, async () => {
      const r = await post(`${url}/v1/completions`, body);
      expect(r.status).toBe(400);
      expect(r.json.error.type).toBe('invalid_request_error');
      expect(typeof r.json.error.message).toBe('string');
      expect(r.json.error.param).toBe(param);
      expect('code' in r.json.error).toBe(true);
      const ok = await post(`${url}/v1/completions`, { prompt: 'Amen', max_tokens: 2, temperature: 0 });
      expect(ok.status).toBe(200);
    });
  }

  test('400 for bad chat messages', async () => {
    for (const messages of [[], 'hi', [{ role: 'robot', content: 'x' }], [{ role: 'user', content: 5 }]]) {
      const r = await post(`${url}/v1/chat/completions`, { messages });
      expect(r.status).toBe(400);
      expect(r.json.error.param).toMatch(/^messages/);
    }
  });

  test('404 for an unknown route, 405 for a wrong method; /v1/models, /health, /metrics', async () => {
    const nf = await fetch(`${url}/v1/nothing`);
    expect(nf.status).toBe(404);
    expect((await nf.json() as any).error.code).toBe('not_found');
    expect((await fetch(`${url}/v1/completions`)).status).toBe(405);
    const models = await (await fetch(`${url}/v1/models`)).json() as any;
    expect(models.data[0].id).toBe('test-model');
    const h = await fetch(`${url}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    const m = await fetch(`${url}/metrics`);
    expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await m.text();
    for (const name of ['fla_requests_total{status="200"}', 'fla_requests_total{status="400"}', 'fla_requests_total{status="404"}',
      'fla_prompt_tokens_total', 'fla_generation_tokens_total', 'fla_queue_depth', 'fla_running_requests', 'fla_generation_tokens_per_second'])
      expect(metric(text, name), name).toBeGreaterThanOrEqual(0);
    expect(metric(text, 'fla_generation_tokens_total')).toBeGreaterThan(0);
    expect(metric(text, 'fla_batch_slots')).toBe(4);
  });

  test('chat without a template is a 400 that says so', async () => {
    const plain = serve(kjv!, 'cpu', 1, 0);
    try {
      const r = await post(`${plain.server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }] });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('no_chat_template');
      expect(r.json.error.message).toMatch(/no chat template/);
    } finally {
      await plain.server.shutdown(1000);
    }
  });
});

describe.skipIf(!kjv)('fla serve limits', () => {
  test('429 beyond max-batch + max-queue; accepted again once there is room', async () => {
    const s = serve(kjv!, 'cpu', 1, 1);
    try {
      const url = `${s.server.url}/v1/completions`;
      const ac = new AbortController();
      const running = [0, 1].map(() => fetch(url, { method: 'POST', body: JSON.stringify({ prompt: 'In the beginning', max_tokens: 4000, stream: true }), signal: ac.signal }));
      expect(await until(async () => s.scheduler.stats().running + s.scheduler.stats().queued === 2)).toBe(true);
      const r = await post(url, { prompt: 'x', max_tokens: 1 });
      expect(r.status).toBe(429);
      expect(r.json.error.code).toBe('queue_full');
      ac.abort();
      await Promise.allSettled(running);
      expect(await until(async () => s.scheduler.stats().running + s.scheduler.stats().queued === 0)).toBe(true);
      expect((await post(url, { prompt: 'x', max_tokens: 1 })).status).toBe(200);
    } finally {
      await s.server.shutdown(1000);
    }
  });

  test.skipIf(!llama)('an over-long prompt is a 400 (context_length_exceeded)', async () => {
    const s = serve(llama!, 'cpu', 1, 1, { ctx: 32 });
    try {
      const url = `${s.server.url}/v1/completions`;
      const r = await post(url, { prompt: 'And it came to pass '.repeat(20), max_tokens: 4 });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('context_length_exceeded');
      expect(s.scheduler.stats().steps).toBe(0);
      expect((await post(url, { prompt: 'And it came to pass', max_tokens: 4, temperature: 0 })).status).toBe(200);
    } finally {
      await s.server.shutdown(1000);
    }
  });

  test('a prompt over --max-prompt-tokens and a max_tokens over --max-tokens-limit are OpenAI-style 400s', async () => {
    const s = serve(kjv!, 'cpu', 1, 1, { template: true, limits: { maxPromptTokens: 16, maxTokens: 16 } });
    try {
      const url = s.server.url;
      const long = 'And it came to pass '.repeat(5);
      const cases: [string, Record<string, unknown>, string, string][] = [
        ['/v1/completions', { prompt: long, max_tokens: 4 }, 'prompt', 'context_length_exceeded'],
        ['/v1/completions', { prompt: Array.from({ length: 17 }, () => 1), max_tokens: 4 }, 'prompt', 'context_length_exceeded'],
        ['/v1/chat/completions', { messages: [{ role: 'user', content: long }], max_tokens: 4 }, 'messages', 'context_length_exceeded'],
        ['/v1/completions', { prompt: 'Amen', max_tokens: 17 }, 'max_tokens', 'invalid_value'],
        ['/v1/completions', { prompt: 'Amen', max_completion_tokens: 17 }, 'max_tokens', 'invalid_value'],
        ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 }, 'max_tokens', 'invalid_value'],
      ];
      for (const [path, body, param, code] of cases) {
        const r = await post(`${url}${path}`, body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.json.error).toMatchObject({ type: 'invalid_request_error', param, code });
        expect(r.json.error.message).toMatch(param === 'max_tokens' ? /--max-tokens-limit/ : /--max-prompt-tokens/);
      }
      expect(s.scheduler.stats().steps).toBe(0);
      const ok = await post(`${url}/v1/completions`, { prompt: 'Amen', max_tokens: 16, temperature: 0 });
      expect(ok.status).toBe(200);
      expect(ok.json.usage.completion_tokens).toBeLessThanOrEqual(16);
      // without max_tokens a request gets min(default, limit) tokens: the default 16 here
      const dflt = await post(`${url}/v1/completions`, { prompt: 'Amen', temperature: 0 });
      expect(dflt.status).toBe(200);
    } finally {
      await s.server.shutdown(1000);
    }
  });
});
