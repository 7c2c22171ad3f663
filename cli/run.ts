// fla run: generate from a prompt, streaming text to stdout (or one JSON object with --json).
import { Engine } from '../src/runtime/engine.ts';
import { generate, type GenerateStats } from '../src/runtime/generate.ts';
import type { Snapshot } from '../src/backend/backend.ts';
import { loadState, saveState } from '../src/runtime/state_file.ts';
import { DEFAULT_MODEL_NAME, looksLikeModel, openSession, parseDevice } from '../src/runtime/open.ts';
import { validateSampling } from '../src/runtime/sample.ts';
import { ChatTemplate, encodeChat } from '../src/tokenizer/chat.ts';
import { UsageError } from '../src/util/errors.ts';
import { HUB_OPTIONS, hubOptions } from './hub.ts';
import { optInt, optNum, optStrings, parseIds, rejectUnknown } from './options.ts';
import { runPrompts } from './prompts.ts';
import { STATE_CACHE_OPTIONS } from './state_cache.ts';

export const RUN_OPTIONS = ['n', 't', 'maxTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'seed', 'stop', 'device', 'json', 'ids', 'echo', ...HUB_OPTIONS, 'chat', 'system', 'prompts', 'maxBatch', 'saveState', 'loadState', ...STATE_CACHE_OPTIONS];

export async function runCommand(a: string | undefined, b: string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, RUN_OPTIONS);
  if (opts.prompts !== undefined) {
    if (b !== undefined) throw new UsageError('--prompts reads the prompts from the file: give at most a MODEL');
    return runPrompts(a, opts);
  }
  for (const k of STATE_CACHE_OPTIONS) if (opts[k] !== undefined) throw new UsageError(`--${k.replace(/[A-Z]/g, c => '-' + c.toLowerCase())} applies to --prompts (and fla serve)`);
  for (const k of ['saveState', 'loadState'] as const)
    if (opts[k] !== undefined && (typeof opts[k] !== 'string' || opts[k] === '')) throw new UsageError(`--${k === 'saveState' ? 'save-state' : 'load-state'} needs one FILE`);
  // one positional: a model if it names a folder or org/name, else the prompt for the default model
  let modelArg: string | undefined, prompt: string | undefined;
  if (b !== undefined) { modelArg = a; prompt = b; }
  else if (a !== undefined && (opts.ids !== undefined || looksLikeModel(a))) modelArg = a;
  else prompt = a;
  const maxTokens = optInt(opts.maxTokens, '--max-tokens', 256, 0);
  const sampling = validateSampling({
    temperature: optNum(opts.temperature, '--temperature'), topK: optNum(opts.topK, '--top-k'), topP: optNum(opts.topP, '--top-p'),
    minP: optNum(opts.minP, '--min-p'), repetitionPenalty: optNum(opts.repetitionPenalty, '--repetition-penalty'),
    seed: opts.seed === undefined ? undefined : optInt(opts.seed, '--seed', 0),
  });
  const device = parseDevice(opts.device);
  const hub = hubOptions(opts);
  const stop = optStrings(opts.stop);
  let ids: number[] | null = null;
  if (opts.ids !== undefined) {
    if (prompt !== undefined) throw new UsageError('give either a prompt or --ids, not both');
    ids = parseIds(opts.ids);
  } else if (prompt === undefined) throw new UsageError(`missing prompt: fla run [MODEL] "PROMPT" (MODEL defaults to ${DEFAULT_MODEL_NAME})`);
  else if (prompt.length === 0) throw new UsageError('the prompt is empty');

  const { model, tokenizer, backend } = await openSession(modelArg, device, ids === null, hub);
  try {
    if (ids === null && opts.chat) {
      const tpl = ChatTemplate.load(model.dir, tokenizer!);
      if (!tpl) throw new UsageError(`--chat: ${model.dir} has no chat template (tokenizer_config.json chat_template or chat_template.jinja)`);
      ids = encodeChat(tokenizer!, tpl, [...(opts.system ? [{ role: 'system' as const, content: String(opts.system) }] : []), { role: 'user', content: prompt! }]);
    }
    if (ids === null) {
      ids = tokenizer!.encode(prompt!);
      if (ids.length === 0) throw new UsageError('the prompt encodes to no tokens');
    }
    const engine = new Engine(model, 1);
    // --load-state: the saved tokens' state is restored and the prompt continues it
    const loaded = opts.loadState !== undefined ? loadState(opts.loadState, model) : null;
    const before = loaded?.tokens.length ?? 0;
    const dims = model.arch.dims(model.cfg);
    if (dims.maxContext !== null && before + ids.length + maxTokens > dims.maxContext)
      throw new UsageError(`prompt (${before ? `${before} loaded + ` : ''}${ids.length} tokens) + --max-tokens ${maxTokens} exceeds the model's context of ${dims.maxContext} tokens`);
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
        seed: sampling.seed ?? null, timings,
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
