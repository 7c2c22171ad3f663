// fla run: generate from a prompt, streaming text to stdout (or one JSON object with --json).
import { Engine } from '../src/runtime/engine.ts';
import { generate, type GenerateStats } from '../src/runtime/generate.ts';
import type { Snapshot } from '../src/backend/backend.ts';
import { loadState, saveState } from '../src/runtime/state_file.ts';
import { DEFAULT_MODEL_NAME, looksLikeModel, openSession, parseDevice } from '../src/runtime/open.ts';
import { randomSeed, validateSampling } from '../src/runtime/sample.ts';
import { encodeChat, requireChatTemplate } from '../src/tokenizer/chat.ts';
import { UsageError } from '../src/util/errors.ts';
import { HUB_OPTIONS, hubOptions } from './hub.ts';
import { optInt, optMaxTokens, optNum, optSeed, optStops, optText, parseIds, readPromptFile, rejectUnknown } from './options.ts';
import { runPrompts } from './prompts.ts';
import { STATE_CACHE_OPTIONS } from './state_cache.ts';

export const RUN_OPTIONS = ['p', 'prompt', 'f', 'file', 'c', 'ctx', 'n', 't', 'temp', 'maxTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'seed', 'stop', 'device', 'json', 'ids', 'echo', ...HUB_OPTIONS, 'chat', 'system', 'prompts', 'maxBatch', 'saveState', 'loadState', ...STATE_CACHE_OPTIONS];

/** MODEL and the prompt from the words after `run`: the first word is the model when it names a folder or org/name. */
export function splitModelAndPrompt(words: string[], hasIds: boolean): { modelArg?: string; words: string[] } {
  const [a, ...rest] = words;
  if (a === undefined) return { words: [] };
  // with more words, a path-like first word is a model even when missing (so a typo is an error, not prompt text)
  if (looksLikeModel(a) || (hasIds && rest.length === 0) || (rest.length > 0 && /^(\.{0,2}\/|~)|\/$/.test(a))) return { modelArg: a, words: rest };
  return { words };
}

export async function runCommand(first: string | undefined, more: string[] | string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, RUN_OPTIONS);
  const positional = [...(first === undefined ? [] : [first]), ...(Array.isArray(more) ? more : more === undefined ? [] : [more])];
  const { modelArg, words } = splitModelAndPrompt(positional, opts.ids !== undefined);
  const fromFlag = optText(opts.prompt, '--prompt');
  const file = optText(opts.file, '--file');
  if (opts.prompts !== undefined) {
    if (words.length || fromFlag !== undefined || file !== undefined) throw new UsageError('--prompts reads the prompts from the file: give at most a MODEL');
    return runPrompts(modelArg, opts);
  }
  for (const k of STATE_CACHE_OPTIONS) if (opts[k] !== undefined) throw new UsageError(`--${k.replace(/[A-Z]/g, c => '-' + c.toLowerCase())} applies to --prompts (and fla serve)`);
  for (const k of ['saveState', 'loadState'] as const)
    if (opts[k] !== undefined && (typeof opts[k] !== 'string' || opts[k] === '')) throw new UsageError(`--${k === 'saveState' ? 'save-state' : 'load-state'} needs one FILE`);
  const given = [words.length ? 'prompt words' : null, fromFlag !== undefined ? '--prompt' : null, file !== undefined ? '--file' : null, opts.ids !== undefined ? '--ids' : null].filter(Boolean);
  if (given.length > 1) throw new UsageError(`give the prompt one way, got ${given.join(' and ')}`);
  const maxTokensArg = optMaxTokens(opts.maxTokens, 256);
  const ctxArg = opts.ctx === undefined ? undefined : optInt(opts.ctx, '--ctx', 4096, 16);
  const sampling = validateSampling({
    temperature: optNum(opts.temperature, '--temperature'), topK: optNum(opts.topK, '--top-k'), topP: optNum(opts.topP, '--top-p'),
    minP: optNum(opts.minP, '--min-p'), repetitionPenalty: optNum(opts.repetitionPenalty, '--repetition-penalty'),
    seed: optSeed(opts.seed),
  });
  sampling.seed ??= randomSeed();           // drawn here so that --json can report it
  const device = parseDevice(opts.device);
  const hub = hubOptions(opts);
  const stop = optStops(opts.stop);
  let ids: number[] | null = null;
  let prompt: string | undefined = words.length ? words.join(' ') : fromFlag;
  if (file !== undefined) prompt = await readPromptFile(file, '--file');
  else if (opts.ids === undefined && prompt === undefined && !process.stdin.isTTY) prompt = (await readPromptFile('-', 'stdin')) || undefined;
  if (opts.ids !== undefined) ids = parseIds(opts.ids);
  else if (prompt === undefined) throw new UsageError(`missing prompt: fla run [MODEL] PROMPT… (or -p TEXT, -f FILE, or text on stdin; MODEL defaults to ${DEFAULT_MODEL_NAME})`);
  else if (prompt.length === 0) throw new UsageError(`the prompt is empty${file !== undefined ? ` (${file})` : ''}`);

  const { model, tokenizer, backend } = await openSession(modelArg, device, ids === null, hub);
  try {
    if (ids === null && opts.chat) {
      const tpl = requireChatTemplate(model.dir, tokenizer!);
      ids = encodeChat(tokenizer!, tpl, [...(opts.system ? [{ role: 'system' as const, content: String(opts.system) }] : []), { role: 'user', content: prompt! }]);
    }
    if (ids === null) {
      ids = tokenizer!.encode(prompt!);
      if (ids.length === 0) throw new UsageError('the prompt encodes to no tokens');
    }
    const dims = model.arch.dims(model.cfg);
    const ctx = dims.maxContext === null ? null : Math.min(ctxArg ?? 4096, dims.maxContext);   // the engine's KV cache size
    // --load-state: the saved tokens' state is restored and the prompt continues it
    const loaded = opts.loadState !== undefined ? loadState(opts.loadState, model) : null;
    const before = loaded?.tokens.length ?? 0;
    const held = before ? `${before} loaded + ${ids.length} prompt` : `${ids.length}`;
    if (ctx !== null && before + ids.length >= ctx) throw new UsageError(`the prompt (${held} tokens) fills the context of ${ctx} tokens${ctx < dims.maxContext! ? ' (raise --ctx)' : ''}`);
    // -1: until EOS, or the end of the context for attention models (recurrent state has no limit)
    const maxTokens = maxTokensArg === -1 ? (ctx === null ? Infinity : ctx - before - ids.length) : maxTokensArg;
    if (ctx !== null && before + ids.length + maxTokens > ctx)
      throw new UsageError(`prompt (${held} tokens) + --max-tokens ${maxTokens} exceeds the ${ctx < dims.maxContext! ? `context of ${ctx} tokens (--ctx; the model allows ${dims.maxContext})` : `model's context of ${ctx} tokens`}`);
    const engine = new Engine(model, 1, 512, ctx ?? undefined);
    let slot: number | undefined;
    if (loaded) {
      slot = engine.acquire();
      backend.restore(loaded.snapshot, slot);
      backend.freeSnapshot(loaded.snapshot);
      engine.positions[slot] = before;
    }
    let saved: Snapshot | null = null;
    const onPrefilled = opts.saveState === undefined ? undefined : (s: number) => { saved = backend.snapshot(s, before + ids!.length); };
    const abort = new AbortController();
    const onSigint = () => { if (abort.signal.aborted) process.exit(130); abort.abort(); };
    process.on('SIGINT', onSigint);
    const eosIds = [...new Set([...model.eosIds, ...(tokenizer?.eosIds ?? [])])];
    const it = generate(engine, tokenizer, ids, { maxTokens, sampling, stop, eosIds, signal: abort.signal, slot, onPrefilled });
    const out: number[] = [];
    let text = '';
    if (!opts.json && opts.echo !== false && prompt !== undefined && !opts.chat) process.stdout.write(prompt);
    let r = await it.next();
    while (!r.done) {
      if (r.value.id !== null) out.push(r.value.id);
      text += r.value.text;
      if (!opts.json && r.value.text) process.stdout.write(r.value.text);
      r = await it.next();
    }
    const stats: GenerateStats = r.value;
    if (saved) await saveState(opts.saveState, model, [...(loaded?.tokens ?? []), ...ids], saved);
    process.off('SIGINT', onSigint);
    const timings = {
      prompt_tokens: stats.promptTokens, generated_tokens: stats.generatedTokens,
      prefill_ms: round(stats.prefillMs), decode_ms: round(stats.decodeMs),
      prompt_tokens_per_s: round(stats.promptTokens / (stats.prefillMs / 1000)),
      generated_tokens_per_s: stats.generatedTokens ? round(stats.generatedTokens / (stats.decodeMs / 1000)) : 0,
    };
    if (opts.json) {
      process.stdout.write(JSON.stringify({
        model: model.dir, device: backend.name, prompt_ids: ids, generated_ids: out, text, finish_reason: stats.finishReason,
        seed: sampling.seed, timings,
      }) + '\n');
    } else if (!text.endsWith('\n')) process.stdout.write('\n');
    if (process.stderr.isTTY || opts.verbose)
      process.stderr.write(`\n[${backend.name}] prompt ${timings.prompt_tokens} tokens, ${timings.prompt_tokens_per_s} tok/s; `
        + `generated ${timings.generated_tokens} tokens, ${timings.generated_tokens_per_s} tok/s (${stats.finishReason})\n`);
    return stats.finishReason === 'cancelled' ? 130 : 0;
  } finally {
    backend.destroy();
  }
}

const round = (x: number) => Number.isFinite(x) ? Math.round(x * 100) / 100 : 0;
