// fla run: generate from a prompt, streaming text to stdout (or one JSON object with --json).
import { GpuBackend } from '../src/backend/gpu.ts';
import { Engine } from '../src/runtime/engine.ts';
import { generate, type GenerateStats } from '../src/runtime/generate.ts';
import { DEFAULT_MODEL_NAME, looksLikeModel, openSession, parseDevice } from '../src/runtime/open.ts';
import { validateSampling } from '../src/runtime/sample.ts';
import { ChatTemplate, encodeChat } from '../src/tokenizer/chat.ts';
import { UsageError } from '../src/util/errors.ts';
import { HUB_OPTIONS, hubOptions } from './hub.ts';
import { optInt, optNum, optStrings, parseIds, rejectUnknown } from './options.ts';
import { runPrompts } from './prompts.ts';

export const RUN_OPTIONS = ['n', 't', 'maxTokens', 'temperature', 'topK', 'topP', 'minP', 'repetitionPenalty', 'seed', 'stop', 'device', 'json', 'ids', 'echo', ...HUB_OPTIONS, 'chat', 'system', 'prompts', 'maxBatch', 'ctx'];

export async function runCommand(a: string | undefined, b: string | undefined, opts: Record<string, any>): Promise<number> {
  rejectUnknown(opts, RUN_OPTIONS);
  if (opts.prompts !== undefined) {
    if (b !== undefined) throw new UsageError('--prompts reads the prompts from the file: give at most a MODEL');
    return runPrompts(a, opts);
  }
  // one positional: a model if it names a folder or org/name, else the prompt for the default model
  let modelArg: string | undefined, prompt: string | undefined;
  if (b !== undefined) { modelArg = a; prompt = b; }
  else if (a !== undefined && (opts.ids !== undefined || looksLikeModel(a))) modelArg = a;
  else prompt = a;
  const maxTokens = optInt(opts.maxTokens, '--max-tokens', 256, 0);
  const ctx = opts.ctx === undefined ? undefined : optInt(opts.ctx, '--ctx', 4096, 16);
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
    const dims = model.arch.dims(model.cfg);
    if (dims.maxContext !== null && ids.length + maxTokens > dims.maxContext)
      throw new UsageError(`prompt (${ids.length} tokens) + --max-tokens ${maxTokens} exceeds the model's context of ${dims.maxContext} tokens`);
    if (ctx !== undefined && dims.maxContext !== null && ctx > dims.maxContext)
      throw new UsageError(`--ctx ${ctx} exceeds the model's context of ${dims.maxContext} tokens`);
    const engine = new Engine(model, 1, 512, ctx);
    // what the sequence's state takes (KV cache of attention layers, recurrent and conv state), beside the weights
    const memory = { ctx: engine.ctx, state_bytes: model.arch.state(model.cfg, engine.ctx).reduce((a, sp) => a + 4 * sp.cols, 0),
      weight_bytes: backend instanceof GpuBackend ? backend.uploadedBytes : null };
    if (ctx !== undefined || opts.verbose)
      process.stderr.write(`[memory] state ${fmtGiB(memory.state_bytes)} for a context of ${memory.ctx} tokens`
        + (memory.weight_bytes !== null ? `; weights ${fmtGiB(memory.weight_bytes)}` : '') + '\n');
    const abort = new AbortController();
    const onSigint = () => { if (abort.signal.aborted) process.exit(130); abort.abort(); };
    process.on('SIGINT', onSigint);
    const eosIds = [...new Set([...model.eosIds, ...(tokenizer?.eosIds ?? [])])];
    const it = generate(engine, tokenizer, ids, { maxTokens, sampling, stop, eosIds, signal: abort.signal });
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
        seed: sampling.seed ?? null, timings, ...(ctx !== undefined ? { memory } : {}),
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

const fmtGiB = (b: number) => b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`;
const round = (x: number) => Number.isFinite(x) ? Math.round(x * 100) / 100 : 0;
