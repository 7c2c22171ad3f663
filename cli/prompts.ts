// fla run --prompts FILE.jsonl: every line is a request; all go through the scheduler together, and one JSON
// result line per prompt is printed in input order.
import { existsSync, readFileSync } from 'node:fs';
import { Engine } from '../src/runtime/engine.ts';
import { openSession, parseDevice } from '../src/runtime/open.ts';
import { Scheduler, type GenStream } from '../src/runtime/scheduler.ts';
import { loadState } from '../src/runtime/state_file.ts';
import { ApiError, parseGenParams, type GenParams } from '../src/serve/openai.ts';
import { encodeChat, requireChatTemplate } from '../src/tokenizer/chat.ts';
import { UsageError } from '../src/util/errors.ts';
import { hubOptions } from './hub.ts';
import { optInt, optNum, optStops } from './options.ts';
import { makePrefixCache, stateCacheOptions } from './state_cache.ts';

const LINE_FIELDS = new Set(['prompt', 'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'seed', 'stop']);

interface Line { prompt: string; params: GenParams }

/** The requests of a JSONL file; the command-line sampling flags are the defaults of every line. */
export function readPrompts(file: string, opts: Record<string, any>): Line[] {
  if (!existsSync(file)) throw new UsageError(`--prompts: no such file ${file}`);
  const defaults: Record<string, unknown> = {
    max_tokens: optInt(opts.maxTokens, '--max-tokens', 256, 0), temperature: optNum(opts.temperature, '--temperature'),
    top_k: optNum(opts.topK, '--top-k'), top_p: optNum(opts.topP, '--top-p'), min_p: optNum(opts.minP, '--min-p'),
    repetition_penalty: optNum(opts.repetitionPenalty, '--repetition-penalty'),
    seed: opts.seed === undefined ? undefined : optInt(opts.seed, '--seed', 0), stop: optStops(opts.stop),
  };
  const lines: Line[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((text, i) => {
    if (text.trim() === '') return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try { v = JSON.parse(text); } catch (e) { throw new UsageError(`${where}: not valid JSON (${(e as Error).message})`); }
    if (typeof v === 'string') v = { prompt: v };
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${where}: expected a JSON string or an object with "prompt"`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!LINE_FIELDS.has(k)) throw new UsageError(`${where}: unknown field "${k}" (fields: ${[...LINE_FIELDS].join(', ')})`);
    if (typeof o.prompt !== 'string' || o.prompt === '') throw new UsageError(`${where}: "prompt" must be a non-empty string`);
    try {
      lines.push({ prompt: o.prompt, params: parseGenParams({ ...defaults, ...o }) });
    } catch (e) {
      throw e instanceof ApiError ? new UsageError(`${where}: ${e.message}`) : e;
    }
  });
  if (lines.length === 0) throw new UsageError(`--prompts: ${file} holds no prompts`);
  return lines;
}

export async function runPrompts(modelArg: string | undefined, opts: Record<string, any>): Promise<number> {
  if (opts.ids !== undefined) throw new UsageError('give either --prompts or --ids, not both');
  if (typeof opts.prompts !== 'string' && typeof opts.prompts !== 'number') throw new UsageError('--prompts needs one FILE.jsonl');
  const lines = readPrompts(String(opts.prompts), opts);
  const maxBatch = optInt(opts.maxBatch, '--max-batch', 16, 1, 1024);
  const cacheOpts = stateCacheOptions(opts);
  if (opts.saveState !== undefined) throw new UsageError('--save-state takes one prompt, not --prompts');
  const { model, tokenizer, backend } = await openSession(modelArg, parseDevice(opts.device), true, hubOptions(opts));
  try {
    const tpl = opts.chat ? requireChatTemplate(model.dir, tokenizer!) : null;
    const ids = lines.map((l, i) => {
      const p = tpl ? encodeChat(tokenizer!, tpl, [...(opts.system ? [{ role: 'system' as const, content: String(opts.system) }] : []), { role: 'user', content: l.prompt }]) : tokenizer!.encode(l.prompt);
      if (p.length === 0) throw new UsageError(`--prompts: prompt ${i} encodes to no tokens`);
      return p;
    });
    const engine = new Engine(model, Math.min(maxBatch, lines.length));
    const eosIds = [...new Set([...model.eosIds, ...tokenizer!.eosIds])];
    const prefixCache = makePrefixCache(cacheOpts, backend);
    if (opts.loadState !== undefined) {   // the saved state seeds the cache: prompts that begin with its tokens start from it
      if (!prefixCache) throw new UsageError('--load-state with --prompts needs the state cache (--state-cache-mb > 0)');
      const st = loadState(String(opts.loadState), model);
      if (!prefixCache.adopt(st.tokens, st.snapshot)) throw new UsageError(`--load-state: the state (${st.tokens.length} tokens, ${st.snapshot.bytes} bytes) does not fit --state-cache-mb or the context`);
    }
    const scheduler = new Scheduler(engine, tokenizer, { maxQueue: lines.length, eosIds, prefixCache });
    const abort = new AbortController();
    const onSigint = () => { if (abort.signal.aborted) process.exit(130); abort.abort(); };
    process.on('SIGINT', onSigint);
    const streams: GenStream[] = lines.map((l, i) => scheduler.submit({
      prompt: ids[i]!, maxTokens: l.params.maxTokens ?? 256, sampling: l.params.sampling, stop: l.params.stop, signal: abort.signal,
    }));
    let failed = false;
    for (let i = 0; i < lines.length; i++) {   // results come in any order; print them in input order
      const r = await streams[i]!.result;
      if (r.finishReason === 'error') failed = true;
      process.stdout.write(JSON.stringify({
        index: i, prompt: lines[i]!.prompt, text: r.text, generated_ids: r.ids, finish_reason: r.finishReason,
        usage: { prompt_tokens: r.promptTokens, completion_tokens: r.generatedTokens, total_tokens: r.promptTokens + r.generatedTokens, prompt_tokens_details: { cached_tokens: r.cachedTokens } },
        ...(r.error ? { error: r.error.message } : {}),
      }) + '\n');
    }
    process.off('SIGINT', onSigint);
    return abort.signal.aborted ? 130 : failed ? 1 : 0;
  } finally {
    backend.destroy();
  }
}
