// The OpenAI-compatible wire format: request validation (→ ApiError with the offending param) and the
// completion, chat completion and streaming chunk objects.
import type { FinishReason, GenResult } from '../runtime/scheduler.ts';
import { validateSampling, type SamplingOptions } from '../runtime/sample.ts';
import type { Message } from '../tokenizer/chat.ts';

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error', readonly code: string | null = null) {
    super(message);
  }
}

export function errorBody(e: ApiError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

type Body = Record<string, unknown>;

/** Generation parameters shared by both endpoints (and by `fla run --prompts` lines). */
export interface GenParams { maxTokens: number | undefined; sampling: SamplingOptions; stop: string[] }

const bad = (param: string, rule: string) => new ApiError(400, `'${param}' must be ${rule}`, param);

function num(b: Body, k: string, ok: (v: number) => boolean, rule: string): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw bad(k, rule);
  return v;
}

const int = (b: Body, k: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  num(b, k, v => Number.isSafeInteger(v) && v >= min && v <= max, `an integer in [${min}, ${max}]`);

export function parseGenParams(b: Body): GenParams {
  const maxTokens = int(b, 'max_tokens', 0) ?? int(b, 'max_completion_tokens', 0);
  const topK = num(b, 'top_k', v => Number.isInteger(v) && v >= -1, 'an integer >= 0 (or -1 for off)');
  const sampling = validateSampling({
    temperature: num(b, 'temperature', v => v >= 0, 'a number >= 0'),
    topP: num(b, 'top_p', v => v > 0 && v <= 1, 'a number in (0, 1]'),
    topK: topK === -1 ? 0 : topK,
    minP: num(b, 'min_p', v => v >= 0 && v <= 1, 'a number in [0, 1]'),
    repetitionPenalty: num(b, 'repetition_penalty', v => v > 0, 'a number > 0'),
    seed: int(b, 'seed', 0),
  });
  let stop: string[] = [];
  const s = b.stop;
  if (typeof s === 'string') stop = [s];
  else if (Array.isArray(s) && s.length <= 16 && s.every(x => typeof x === 'string')) stop = s as string[];
  else if (s !== undefined && s !== null) throw bad('stop', 'a string or a list of at most 16 strings');
  return { maxTokens, sampling, stop };
}

/** Fields clients send that fla does not implement: refused unless they hold their neutral value. */
function refuseUnsupported(b: Body): void {
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw new ApiError(400, "only 'n': 1 is supported", 'n');
  if (b.best_of !== undefined && b.best_of !== null && b.best_of !== 1) throw new ApiError(400, "only 'best_of': 1 is supported", 'best_of');
  for (const k of ['logprobs', 'echo', 'top_logprobs', 'suffix', 'tools', 'functions', 'logit_bias'])
    if (b[k] !== undefined && b[k] !== null && b[k] !== false) throw new ApiError(400, `'${k}' is not supported`, k);
  // Constrained decoding is not implemented: refuse it rather than return unconstrained text.
  const rf = b.response_format as { type?: unknown } | null | undefined;
  if (rf !== undefined && rf !== null && !(typeof rf === 'object' && !Array.isArray(rf) && rf.type === 'text' && Object.keys(rf).length === 1))
    throw new ApiError(400, `'response_format' is not supported (only {"type": "text"}); fla does not constrain output to JSON or a schema`, 'response_format');
  for (const k of ['grammar', 'json_schema', 'guided_json', 'guided_regex', 'guided_choice', 'guided_grammar'])
    if (b[k] !== undefined && b[k] !== null) throw new ApiError(400, `'${k}' is not supported: fla does not constrain output to a grammar`, k);
  for (const k of ['presence_penalty', 'frequency_penalty'])
    if (b[k] !== undefined && b[k] !== null && b[k] !== 0) throw new ApiError(400, `'${k}' is not supported (use repetition_penalty)`, k);
}

export interface ApiRequest extends GenParams { stream: boolean; includeUsage: boolean }

function common(b: Body): ApiRequest {
  if (b.model !== undefined && typeof b.model !== 'string') throw bad('model', 'a string');
  refuseUnsupported(b);
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw bad('stream', 'a boolean');
  const so = b.stream_options;
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) throw bad('stream_options', 'an object');
  const iu = (so as Body | null | undefined)?.include_usage;
  if (iu !== undefined && typeof iu !== 'boolean') throw bad('stream_options.include_usage', 'a boolean');
  return { ...parseGenParams(b), stream: b.stream === true, includeUsage: iu === true };
}

/** The JSON object of a request body, or a 400. */
export function parseBody(text: string): Body {
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw new ApiError(400, `the body is not valid JSON: ${(e as Error).message}`); }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, 'the body must be a JSON object');
  return v as Body;
}

/** /v1/completions: the prompt is a string, a list of token ids, or a list holding one string. */
export function parseCompletion(b: Body): ApiRequest & { prompt: string | number[] } {
  let p = b.prompt;
  if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') p = p[0];
  const ids = Array.isArray(p) && p.length > 0 && p.every(x => Number.isSafeInteger(x) && (x as number) >= 0);
  if (!(typeof p === 'string' && p.length > 0) && !ids) throw bad('prompt', 'a non-empty string or a list of token ids');
  return { ...common(b), prompt: p as string | number[] };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);

/** /v1/chat/completions: messages with text content (a string or a list of text parts). */
export function parseChat(b: Body): ApiRequest & { messages: Message[] } {
  const ms = b.messages;
  if (!Array.isArray(ms) || ms.length === 0) throw bad('messages', 'a non-empty list of messages');
  const messages = ms.map((m, i): Message => {
    const where = `messages[${i}]`;
    if (!m || typeof m !== 'object') throw bad(where, 'an object with role and content');
    const { role, content } = m as Body;
    if (typeof role !== 'string' || !ROLES.has(role)) throw bad(`${where}.role`, 'one of system, user, assistant');
    let text: string;
    if (typeof content === 'string') text = content;
    else if (Array.isArray(content) && content.every(c => c && typeof c === 'object' && (c as Body).type === 'text' && typeof (c as Body).text === 'string'))
      text = content.map(c => (c as Body).text as string).join('');
    else throw bad(`${where}.content`, 'a string or a list of text parts');
    return { role: role === 'developer' ? 'system' : role as Message['role'], content: text };
  });
  return { ...common(b), messages };
}

/** What one request may ask for (`fla serve --max-prompt-tokens`, `--max-tokens-limit`). */
export interface RequestLimits { maxPromptTokens: number; maxTokens: number }

export const DEFAULT_LIMITS: RequestLimits = { maxPromptTokens: 16384, maxTokens: 4096 };

/** 400s for a prompt or a max_tokens over the server's limits, as OpenAI words and codes them. */
export function checkLimits(chat: boolean, promptTokens: number, maxTokens: number | undefined, l: RequestLimits): void {
  if (promptTokens > l.maxPromptTokens)
    throw new ApiError(400, `the prompt has ${promptTokens} tokens; this server accepts at most ${l.maxPromptTokens} (--max-prompt-tokens)`,
      chat ? 'messages' : 'prompt', 'invalid_request_error', 'context_length_exceeded');
  if (maxTokens !== undefined && maxTokens > l.maxTokens)
    throw new ApiError(400, `'max_tokens' is too large: ${maxTokens}; this server allows at most ${l.maxTokens} (--max-tokens-limit)`,
      'max_tokens', 'invalid_request_error', 'invalid_value');
}

export function finishReason(r: FinishReason): 'stop' | 'length' | null {
  return r === 'eos' || r === 'stop' ? 'stop' : r === 'length' ? 'length' : null;
}

/** OpenAI's usage object; prompt_tokens counts every prompt token, cached_tokens those restored from the prefix cache. */
export function usage(promptTokens: number, completionTokens: number, cachedTokens = 0) {
  return {
    prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

export interface Ids { id: string; created: number; model: string }

export function completion(k: Ids, r: GenResult) {
  return {
    id: k.id, object: 'text_completion', created: k.created, model: k.model,
    choices: [{ index: 0, text: r.text, logprobs: null, finish_reason: finishReason(r.finishReason) }],
    usage: usage(r.promptTokens, r.generatedTokens, r.cachedTokens),
  };
}

export function chatCompletion(k: Ids, r: GenResult) {
  return {
    id: k.id, object: 'chat.completion', created: k.created, model: k.model,
    choices: [{ index: 0, message: { role: 'assistant', content: r.text }, logprobs: null, finish_reason: finishReason(r.finishReason) }],
    usage: usage(r.promptTokens, r.generatedTokens, r.cachedTokens),
  };
}

/** A streaming chunk: text (or null for the role-only first chat chunk), or the finish reason at the end. */
export function chunk(k: Ids, chat: boolean, text: string | null, finish: FinishReason | null = null) {
  const fr = finish === null ? null : finishReason(finish);
  const choice = chat
    ? { index: 0, delta: text === null ? { role: 'assistant', content: '' } : finish === null ? { content: text } : {}, logprobs: null, finish_reason: fr }
    : { index: 0, text: text ?? '', logprobs: null, finish_reason: fr };
  return { id: k.id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: k.created, model: k.model, choices: [choice] };
}

export function usageChunk(k: Ids, chat: boolean, r: GenResult) {
  return { id: k.id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: k.created, model: k.model, choices: [], usage: usage(r.promptTokens, r.generatedTokens, r.cachedTokens) };
}
