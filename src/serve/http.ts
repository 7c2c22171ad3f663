// The HTTP server (Bun.serve): routes, error responses, per-request log lines, and graceful shutdown.
import { ClosedError, QueueFullError, type GenResult, type GenStream, type Scheduler } from '../runtime/scheduler.ts';
import { ChatTemplate, encodeChat } from '../tokenizer/chat.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { FlaError, GpuError, UsageError } from '../util/errors.ts';
import { log } from '../util/log.ts';
import { Metrics } from './metrics.ts';
import {
  ApiError, DEFAULT_LIMITS, chatCompletion, checkLimits, chunk, completion, errorBody, parseBody, parseChat, parseCompletion, usageChunk, type Ids, type RequestLimits,
} from './openai.ts';
import { sseResponse } from './sse.ts';

export interface ServerOptions {
  scheduler: Scheduler;
  tokenizer: Tokenizer;
  template: ChatTemplate | null;
  modelName: string;
  host: string;
  port: number;
  /** max_tokens when a request gives none (capped by the context). */
  defaultMaxTokens: number;
  /** Seconds a connection may send nothing (headers or body) before it is closed (default 30). */
  idleTimeoutS?: number;
  /** Requests in progress at most; more get 503 at once (default 512). /health and /metrics always answer. */
  maxConnections?: number;
  /** Largest request body in bytes; larger ones get 413 (default 16 MiB). */
  maxBodyBytes?: number;
  /** Largest prompt and max_tokens a request may ask for (default DEFAULT_LIMITS); over them is a 400. */
  limits?: RequestLimits;
}

export interface FlaServer {
  url: string;
  port: number;
  /** Stop accepting, let admitted requests finish for up to graceMs (then cancel them), close. */
  shutdown(graceMs: number): Promise<void>;
}

const json = (v: unknown, status = 200) => Response.json(v, { status });

/** The client stopped sending its body (idle timeout) or went away: nobody reads the answer, and it is no 500. */
class BodyGone extends Error {}

/** `inFlight`: the error ended a request that was running (a device failure there is a 500, afterwards a 503). */
function apiError(e: unknown, inFlight = false): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFullError) return new ApiError(429, e.message, null, 'rate_limit_error', 'queue_full');
  if (e instanceof ClosedError) return new ApiError(503, e.message, null, 'server_error', 'shutting_down');
  if (e instanceof GpuError) return new ApiError(inFlight ? 500 : 503, e.message, null, 'server_error', 'device_error');
  if (e instanceof UsageError) {
    const ctx = /exceeds the context/.test(e.message);
    return new ApiError(400, e.message, 'prompt', 'invalid_request_error', ctx ? 'context_length_exceeded' : null);
  }
  if (e instanceof FlaError) return new ApiError(500, e.message);
  return new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
}

export function startServer(o: ServerOptions): FlaServer {
  const { scheduler, tokenizer } = o;
  const metrics = new Metrics();
  const created = Math.floor(Date.now() / 1000);
  let draining = false;
  let nextId = 0;
  const maxBody = o.maxBodyBytes ?? 16 * 1024 * 1024;
  const idleS = o.idleTimeoutS ?? 30;

  const note = (req: Request, path: string, status: number, t0: number, extra = '') => {
    if (path !== '/metrics') metrics.count(status);   // scrapes are not requests of the service
    const line = `${req.method} ${path} ${status} ${(performance.now() - t0).toFixed(0)}ms${extra}`;
    if (path === '/health' || path === '/metrics') log.debug(line); else log.info(line);
  };
  const summary = (r: GenResult) => ` prompt=${r.promptTokens} completion=${r.generatedTokens} finish=${r.finishReason}${r.error ? ` (${r.error.message})` : ''}`;

  /** The body as text: 413 past maxBody (by Content-Length before reading, or while reading a chunked body). */
  async function readBody(req: Request): Promise<string> {
    const tooLarge = () => new ApiError(413, `the request body is larger than ${maxBody} bytes`, null, 'invalid_request_error', 'request_too_large');
    if (Number(req.headers.get('content-length') ?? 0) > maxBody) throw tooLarge();
    if (!req.body) return '';
    const reader = req.body.getReader();
    const parts: Uint8Array[] = [];
    let n = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.byteLength;
        if (n > maxBody) { void reader.cancel().catch(() => {}); throw tooLarge(); }
        parts.push(value);
      }
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw new BodyGone((e as Error)?.message ?? 'the connection closed');
    }
    return Buffer.concat(parts).toString('utf8');
  }

  async function generation(req: Request, path: string, chat: boolean, t0: number): Promise<Response> {
    const body = parseBody(await readBody(req));
    const r = chat ? parseChat(body) : parseCompletion(body);
    let ids: number[];
    if ('messages' in r) {
      if (!o.template) throw new ApiError(400, `model ${o.modelName} has no chat template (tokenizer_config.json chat_template or chat_template.jinja); use /v1/completions`, 'messages', 'invalid_request_error', 'no_chat_template');
      try { ids = encodeChat(tokenizer, o.template, r.messages); } catch (e) { throw new ApiError(400, (e as Error).message, 'messages'); }
    } else ids = typeof r.prompt === 'string' ? tokenizer.encode(r.prompt) : r.prompt;
    if (ids.length === 0) throw new ApiError(400, 'the prompt encodes to no tokens', 'prompt');
    const limits = o.limits ?? DEFAULT_LIMITS;
    checkLimits(chat, ids.length, r.maxTokens, limits);
    const room = scheduler.contextLimit - ids.length;
    const maxTokens = r.maxTokens ?? Math.max(0, Math.min(o.defaultMaxTokens, limits.maxTokens, room));
    const abort = new AbortController();
    const stream: GenStream = scheduler.submit({ prompt: ids, maxTokens, sampling: r.sampling, stop: r.stop, signal: abort.signal });
    // Admitted: a long generation may send nothing until it ends. The idle timeout comes back with the answer
    // (an idle keep-alive connection must not hold a descriptor forever).
    server.timeout(req, 0);
    const restoreTimeout = () => { try { server.timeout(req, idleS); } catch { /* the connection is gone */ } };
    req.signal.addEventListener('abort', () => abort.abort(), { once: true });
    const k: Ids = { id: `${chat ? 'chatcmpl' : 'cmpl'}-${(nextId++).toString(36)}${Date.now().toString(36)}`, created: Math.floor(Date.now() / 1000), model: o.modelName };

    if (!r.stream) {
      const res = await stream.result;
      restoreTimeout();
      if (res.finishReason === 'error') {
        const e = apiError(res.error, true);
        note(req, path, e.status, t0, summary(res));
        return json(errorBody(e), e.status);
      }
      note(req, path, 200, t0, summary(res));
      return json(chat ? chatCompletion(k, res) : completion(k, res));
    }
    async function* events() {
      if (chat) yield chunk(k, true, null);
      for await (const p of stream) if (p.text) yield chunk(k, chat, p.text);
      const res = await stream.result;
      if (res.finishReason === 'error') { yield errorBody(apiError(res.error, true)); return; }
      yield chunk(k, chat, '', res.finishReason);
      if (r.includeUsage) yield usageChunk(k, chat, res);
    }
    return sseResponse(events(), () => abort.abort(), () => {
      restoreTimeout();
      void stream.result.then(res => note(req, path, 200, t0, ` stream${summary(res)}`));   // counted when it ends
    });
  }

  async function route(req: Request, path: string, t0: number): Promise<Response> {
    const get = req.method === 'GET' || req.method === 'HEAD', post = req.method === 'POST';
    if (path === '/health' && get) {
      const failure = scheduler.stats().failure;
      const status = failure ? 503 : draining ? 503 : 200;
      note(req, path, status, t0);
      return json(failure ? { status: 'device failed', error: failure } : { status: draining ? 'shutting down' : 'ok' }, status);
    }
    if (path === '/metrics' && get) {
      note(req, path, 200, t0);
      return new Response(metrics.render(scheduler.stats()), { headers: { 'content-type': 'text/plain; version=0.0.4' } });
    }
    if (path === '/v1/models' && get) {
      note(req, path, 200, t0);
      return json({ object: 'list', data: [{ id: o.modelName, object: 'model', created, owned_by: 'fla' }] });
    }
    if (path === '/v1/completions' && post) return generation(req, path, false, t0);
    if (path === '/v1/chat/completions' && post) return generation(req, path, true, t0);
    const known = ['/health', '/metrics', '/v1/models', '/v1/completions', '/v1/chat/completions'].includes(path);
    if (known) throw new ApiError(405, `${req.method} is not allowed on ${path}`, null, 'invalid_request_error', 'method_not_allowed');
    throw new ApiError(404, `no route ${req.method} ${path}`, null, 'invalid_request_error', 'not_found');
  }

  const maxConnections = o.maxConnections ?? 512;
  const server = Bun.serve({
    hostname: o.host,
    port: o.port,
    // A connection that sends nothing for this long (slow or stuck headers or body) is closed; generation requests
    // lift it once their body is in (server.timeout above).
    idleTimeout: idleS,
    maxRequestBodySize: 2 ** 40,          // enforced by readBody, which answers 413 with a JSON body
    async fetch(req, srv) {
      const t0 = performance.now();
      const path = new URL(req.url).pathname;
      try {
        if (srv.pendingRequests > maxConnections && path !== '/health' && path !== '/metrics')
          throw new ApiError(503, `too many connections (over ${maxConnections} requests in progress); try again later`, null, 'server_error', 'too_many_connections');
        return await route(req, path, t0);
      } catch (err) {
        if (err instanceof BodyGone) {
          note(req, path, 408, t0, `: the request body did not arrive (${err.message})`);
          return new Response(null, { status: 408, headers: { connection: 'close' } });
        }
        const e = apiError(err);
        note(req, path, e.status, t0, `: ${e.message}`);
        const res = json(errorBody(e), e.status);
        if (e.status === 413 || e.code === 'too_many_connections') res.headers.set('connection', 'close');
        return res;
      }
    },
  });

  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${server.port}`,
    port: server.port!,
    async shutdown(graceMs: number) {
      draining = true;                    // still listening: /health says 503 and new requests get 503 while draining
      await scheduler.drain(graceMs);
      const stopped = server.stop(false);
      await Promise.race([stopped, Bun.sleep(2000)]);   // let the last frames of finished streams go out
      await server.stop(true);
    },
  };
}
