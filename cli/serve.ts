// fla serve: the OpenAI-compatible HTTP server; stdout gets only the listening address, logs go to stderr.
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { Engine } from '../src/runtime/engine.ts';
import { DEFAULT_MODEL_NAME, openSession, parseDevice } from '../src/runtime/open.ts';
import { Scheduler } from '../src/runtime/scheduler.ts';
import { startServer } from '../src/serve/http.ts';
import { DEFAULT_LIMITS } from '../src/serve/openai.ts';
import { ChatTemplate } from '../src/tokenizer/chat.ts';
import { UsageError } from '../src/util/errors.ts';
import { log } from '../src/util/log.ts';
import { HUB_OPTIONS, hubOptions } from './hub.ts';
import { optInt, rejectUnknown } from './options.ts';
import { STATE_CACHE_OPTIONS, makePrefixCache, stateCacheOptions } from './state_cache.ts';

export const SERVE_OPTIONS = ['host', 'port', 'maxBatch', 'maxQueue', 'n', 'maxTokens', 'maxTokensLimit', 'maxPromptTokens', 'ctx', 'device', 'shutdownTimeout', ...HUB_OPTIONS, ...STATE_CACHE_OPTIONS];

export async function serveCommand(modelArg: string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, SERVE_OPTIONS);
  const host = opts.host === undefined ? '127.0.0.1' : String(opts.host);
  if (host === '' || typeof opts.host === 'boolean' || Array.isArray(opts.host)) throw new UsageError('--host needs one address');
  const port = optInt(opts.port, '--port', 8080, 0, 65535);
  const maxBatch = optInt(opts.maxBatch, '--max-batch', 8, 1, 1024);
  const maxQueue = optInt(opts.maxQueue, '--max-queue', 64, 0);
  const maxTokens = optInt(opts.maxTokens, '--max-tokens', 256, 1);
  const maxTokensLimit = optInt(opts.maxTokensLimit, '--max-tokens-limit', Math.max(DEFAULT_LIMITS.maxTokens, maxTokens), 1);
  if (maxTokens > maxTokensLimit) throw new UsageError(`--max-tokens ${maxTokens} is over --max-tokens-limit ${maxTokensLimit}`);
  const maxPromptTokens = optInt(opts.maxPromptTokens, '--max-prompt-tokens', DEFAULT_LIMITS.maxPromptTokens, 1);
  const ctx = optInt(opts.ctx, '--ctx', 4096, 16);
  const graceS = optInt(opts.shutdownTimeout, '--shutdown-timeout', 30, 0);
  const device = parseDevice(opts.device);
  const cacheOpts = stateCacheOptions(opts);
  const { model, tokenizer, backend } = await openSession(modelArg, device, true, hubOptions(opts));
  try {
    const engine = new Engine(model, maxBatch, 512, ctx);
    const eosIds = [...new Set([...model.eosIds, ...tokenizer!.eosIds])];
    const scheduler = new Scheduler(engine, tokenizer, { maxQueue, eosIds, prefixCache: makePrefixCache(cacheOpts, backend) });
    const modelName = modelArg === undefined ? DEFAULT_MODEL_NAME : existsSync(modelArg) ? basename(resolve(modelArg)) : modelArg;
    const server = startServer({
      scheduler, tokenizer: tokenizer!, template: ChatTemplate.load(model.dir, tokenizer!), modelName, host, port, defaultMaxTokens: maxTokens,
      limits: { maxPromptTokens, maxTokens: maxTokensLimit },
    });
    process.stdout.write(`listening on ${server.url}\n`);
    log.info(`fla serve: ${modelName} on ${backend.name}, ${maxBatch} slots, queue ${maxQueue}`);
    const signal = await new Promise<string>(resolve => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    log.info(`${signal}: finishing in-flight requests (up to ${graceS} s), then exiting`);
    const again = () => process.exit(130);
    process.once('SIGTERM', again);
    process.once('SIGINT', again);
    await server.shutdown(graceS * 1000);
    return 0;
  } finally {
    backend.destroy();
  }
}
