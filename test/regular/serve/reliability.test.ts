// The server under failure and abuse: a GPU validation error fails the request (500) and flips /health and
// fla_device_up; state over the binding limit is refused before start; slow or stuck bodies time out and
// connections are capped (neither counted as 500s); 413 has a JSON body; /metrics does not count its scrapes and
// counts a stream when it ends; /health says 503 while shutting down.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { GpuBackend } from '../../../src/backend/gpu.ts';
import { Gpu } from '../../../src/gpu/device.ts';
import { inspectModel, loadWeights } from '../../../src/runtime/model.ts';
import { Engine } from '../../../src/runtime/engine.ts';
import { Scheduler } from '../../../src/runtime/scheduler.ts';
import { startServer, type ServerOptions } from '../../../src/serve/http.ts';
import { HfTokenizer } from '../../../src/tokenizer/hf.ts';
import { sharedModel } from '../../helpers/fixtures.ts';
import { gpu, HAS_GPU } from '../../helpers/gpu.ts';
import { load } from '../../helpers/model.ts';
import { metric, post, stream, streamText } from './client.ts';

const kjv = sharedModel('kjv-rwkv7');
const llama = sharedModel('kjv-llama');
const ROOT = join(import.meta.dir, '../../..');

function serveOn(model: ReturnType<typeof load>, dir: string, extra: Partial<ServerOptions> = {}, slots = 2) {
  const engine = new Engine(model, slots, 512);
  const tokenizer = HfTokenizer.load(dir);
  const scheduler = new Scheduler(engine, tokenizer, { maxQueue: 8, eosIds: [0] });
  const server = startServer({ scheduler, tokenizer, template: null, modelName: 'test-model', host: '127.0.0.1', port: 0, defaultMaxTokens: 8, ...extra });
  return { engine, scheduler, server, url: server.url };
}

const metrics = async (url: string) => (await fetch(`${url}/metrics`)).text();

/** A raw connection that sends the request head (and `body` bytes of a longer body), then nothing. */
function stalled(port: number, body = '', contentLength = 1000): Promise<{ socket: Socket; closed: Promise<number>; data: () => string }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let got = '';
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n${body}`);
      resolve({ socket, closed, data: () => got });
    });
    const closed = new Promise<number>(r => socket.on('close', () => r(Date.now() - t0)));
    socket.on('data', d => { got += d.toString(); });
    socket.on('error', reject);
  });
}

describe.skipIf(!HAS_GPU || !kjv)('a GPU error while serving', () => {
  test('fails the running request with 500 and the message; /health 503, fla_device_up 0, later requests 503', async () => {
    const own = await Gpu.create();                    // a device of its own: this test breaks it on purpose
    const backend = new GpuBackend(own);
    const s = serveOn(loadWeights(inspectModel(kjv!), backend), kjv!);
    try {
      const ok = await post(`${s.url}/v1/completions`, { prompt: 'In the beginning', max_tokens: 4, temperature: 0 });
      expect(ok.status).toBe(200);
      expect(metric(await metrics(s.url), 'fla_device_up')).toBe(1);
      // What an invalid binding does to a step: its commands are rejected, nothing runs. A destroyed state buffer
      // is the same kind of validation error, reached without changing the model.
      const states = (backend as any).states as Map<string, { view: { buffer: GPUBuffer } }>;
      states.values().next().value!.view.buffer.destroy();
      const bad = await post(`${s.url}/v1/completions`, { prompt: 'In the beginning', max_tokens: 4, temperature: 0 });
      expect(bad.status).toBe(500);
      expect(bad.json.error.code).toBe('device_error');
      expect(bad.json.error.message).toMatch(/GPU device failed: validation error: .*destroyed/i);
      const h = await fetch(`${s.url}/health`);
      expect(h.status).toBe(503);
      expect((await h.json() as any).status).toBe('device failed');
      expect(metric(await metrics(s.url), 'fla_device_up')).toBe(0);
      const later = await post(`${s.url}/v1/completions`, { prompt: 'Jesus wept.', max_tokens: 4 });
      expect(later.status).toBe(503);
      const st = await stream(`${s.url}/v1/completions`, { prompt: 'Jesus wept.', max_tokens: 4 });
      expect(st.status).toBe(503);
    } finally {
      await s.server.shutdown(1000);
      own.destroy();
    }
  });
});

describe.skipIf(!HAS_GPU || !llama)('state over the binding limit', () => {
  test('refused before start, naming --max-batch (and --ctx for a KV cache)', () => {
    const model = load(llama!, 'gpu');
    const perSlot = 4 * 2048 * 2 * 64;                 // one layer's K: ctx × kv heads × head dim, f32
    const fit = Math.floor(gpu!.maxBinding / perSlot);
    expect(() => new Engine(model, fit + 1, 512, 2048)).toThrow(new RegExp(`^state 0\\.k needs .* for ${fit + 1} sequences, over the adapter's largest storage binding \\(.*\\): lower --max-batch \\(at most ${fit} sequences fit at --ctx 2048\\) or --ctx$`));
    expect(() => new Engine(model, fit, 512, 2048)).not.toThrow();
  });

  test('fla serve --max-batch too large: one line, exit 1, nothing on stdout', () => {
    const fit = Math.floor(gpu!.maxBinding / (4 * 2048 * 2 * 64));
    const p = Bun.spawnSync([process.execPath, join(ROOT, 'cli/main.ts'), 'serve', llama!, '--max-batch', String(fit + 1), '--port', '0', '--device', 'gpu'], { cwd: ROOT });
    expect(p.exitCode).toBe(1);
    expect(p.stdout.toString()).toBe('');
    const err = p.stderr.toString().trim().split('\n');
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^error: state 0\.k needs .*: lower --max-batch \(at most \d+ sequences fit at --ctx 2048\) or --ctx$/);
  });
});

describe.skipIf(!kjv)('abusive clients (cpu)', () => {
  let s: ReturnType<typeof serveOn>;
  beforeAll(() => { s = serveOn(load(kjv!, 'cpu'), kjv!, { idleTimeoutS: 1, maxConnections: 6, maxBodyBytes: 4096 }); });
  afterAll(async () => { await s?.server.shutdown(1000); });

  test('a body that stops arriving is closed by the server within a few seconds and counted as 408, not 500', async () => {
    const before = await metrics(s.url);
    const conns = await Promise.all([stalled(s.server.port, '{"prompt": "In the'), stalled(s.server.port)]);
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const times = await Promise.all(conns.map(c => Promise.race([c.closed, Bun.sleep(8000).then(() => -1)])));
    // idle sockets are swept once a tick (481 ms seen): > 100 only says not at once
    for (const t of times) { expect(t).toBeGreaterThan(100); expect(t).toBeLessThan(6000); }
    await Bun.sleep(100);
    const after = await metrics(s.url);
    expect(metric(after, 'fla_requests_total{status="500"}') || 0).toBe(metric(before, 'fla_requests_total{status="500"}') || 0);
    expect(metric(after, 'fla_requests_total{status="408"}')).toBe((metric(before, 'fla_requests_total{status="408"}') || 0) + 2);
  });

  test('connections beyond the cap get 503 at once; /health still answers', async () => {
    const conns = await Promise.all(Array.from({ length: 10 }, () => stalled(s.server.port, '{')));
    await Bun.sleep(300);
    const refused = conns.filter(c => c.data().startsWith('HTTP/1.1 503'));
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(refused[0]!.data()).toMatch(/"code":"too_many_connections"/);
    const h = await fetch(`${s.url}/health`);
    expect(h.status).toBe(200);
    for (const c of conns) c.socket.destroy();
    await Bun.sleep(1500);
    expect((await post(`${s.url}/v1/completions`, { prompt: 'In the beginning', max_tokens: 2, temperature: 0 })).status).toBe(200);
  });

  test('413 carries a JSON error body and is counted in /metrics (Content-Length and chunked)', async () => {
    const before = metric(await metrics(s.url), 'fla_requests_total{status="413"}') || 0;
    const big = JSON.stringify({ prompt: 'x'.repeat(5000) });
    const a = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: big });
    expect(a.status).toBe(413);
    expect(await a.json()).toEqual({ error: { message: 'the request body is larger than 4096 bytes', type: 'invalid_request_error', param: null, code: 'request_too_large' } });
    const chunked = new ReadableStream({ start(c) { for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode(big.slice(i * 1000, (i + 1) * 1000))); c.close(); } });
    const b = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: chunked });
    expect(b.status).toBe(413);
    expect((await b.json() as any).error.code).toBe('request_too_large');
    expect(metric(await metrics(s.url), 'fla_requests_total{status="413"}')).toBe(before + 2);
  });

  test('/metrics does not count its own scrapes; a stream is counted when it ends', async () => {
    const ok = (t: string) => metric(t, 'fla_requests_total{status="200"}') || 0;
    const m0 = ok(await metrics(s.url));
    expect(ok(await metrics(s.url))).toBe(m0);
    expect(ok(await metrics(s.url))).toBe(m0);
    let during = -1;
    const r = await stream(`${s.url}/v1/completions`, { prompt: 'In the beginning', max_tokens: 6, temperature: 0 }, {
      onFrame: n => { if (n === 1) void metrics(s.url).then(t => { during = ok(t); }); },
    });
    expect(streamText(r.frames).finish).toBe('length');
    await Bun.sleep(50);
    expect(during).toBe(m0);
    expect(ok(await metrics(s.url))).toBe(m0 + 1);
  });
});

describe.skipIf(!kjv)('shutting down (cpu)', () => {
  test('/health answers 503 "shutting down" while in-flight requests finish; new generations get 503', async () => {
    const s = serveOn(load(kjv!, 'cpu'), kjv!);
    const running = post(`${s.url}/v1/completions`, { prompt: 'In the beginning', max_tokens: 60, temperature: 0 });
    await Bun.sleep(150);
    const down = s.server.shutdown(30_000);
    await Bun.sleep(20);
    const h = await fetch(`${s.url}/health`);
    expect(h.status).toBe(503);
    expect(await h.json()).toEqual({ status: 'shutting down' });
    const late = await post(`${s.url}/v1/completions`, { prompt: 'Jesus wept.', max_tokens: 2 });
    expect(late.status).toBe(503);
    expect(late.json.error.code).toBe('shutting_down');
    expect((await running).status).toBe(200);
    await down;
    await expect(fetch(`${s.url}/health`)).rejects.toThrow();
  });
});

describe.skipIf(!kjv)('keep-alive after an answer (cpu)', () => {
  test('a connection left idle after its generation is closed by the idle timeout again', async () => {
    const s = serveOn(load(kjv!, 'cpu'), kjv!, { idleTimeoutS: 1 });
    try {
      const t0 = Date.now();
      const body = JSON.stringify({ prompt: 'In the beginning', max_tokens: 2, temperature: 0 });
      let got = '';
      const closed = await new Promise<number>(resolve => {
        const sock = connect(s.server.port, '127.0.0.1', () => sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
        sock.on('data', d => { got += d.toString(); });
        sock.on('close', () => resolve(Date.now() - t0));
        setTimeout(() => { sock.destroy(); resolve(-1); }, 10_000);
      });
      expect(got).toMatch(/^HTTP\/1\.1 200/);
      expect(closed).toBeGreaterThan(0);
      expect(closed).toBeLessThan(8000);
    } finally {
      await s.server.shutdown(1000);
    }
  }, 30_000);
});
