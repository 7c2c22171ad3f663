// Single-sequence generation on the engine (fla run, fla chat): chunked prefill, then one decode step per token,
// with cancellation. The per-sequence part (sampling, EOS, stop strings held back until they can no longer match,
// max tokens) is SeqDecoder, which the scheduler uses too.
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { StreamDecoder } from '../tokenizer/hf.ts';
import type { Engine } from './engine.ts';
import { encodeRow, paramCols, sampleRow, type SampleRow } from '../../kernels/sample/sample.ref.ts';
import { Sampler, type SamplingOptions } from './sample.ts';

export interface GenerateOptions extends DecodeOptions {
  signal?: AbortSignal;
  /** Continue this slot's state (multi-turn chat); it is then not released. Default: a fresh slot. */
  slot?: number;
  /** Called once the prompt is in the slot's state, before the first token is sampled (fla run --save-state). */
  onPrefilled?: (slot: number) => void;
}

export interface GenerateStats {
  promptTokens: number; generatedTokens: number;
  prefillMs: number; decodeMs: number;
  finishReason: 'eos' | 'stop' | 'length' | 'cancelled';
  /** Generated tokens the slot's state has consumed (the last sampled one usually has not been fed). */
  fedTokens: number;
}

export interface Piece { id: number | null; text: string }

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled' | 'error';

export interface DecodeOptions {
  maxTokens: number;
  sampling: SamplingOptions;
  stop?: string[];
  eosIds?: number[];
}

/**
 * One sequence's generation state, shared by generate() and the scheduler: samples each next token, ends at EOS, a
 * stop string or max tokens, and holds back text that may begin a stop string until it can no longer match.
 */
export class SeqDecoder {
  /** Generated ids (EOS excluded). */
  readonly ids: number[] = [];
  /** Why the sequence ended, or null while it runs. */
  finish: FinishReason | null = null;
  private readonly sampler: Sampler;
  private readonly eos: Set<number>;
  private readonly stops: string[];
  private readonly decoder: StreamDecoder | null;
  private readonly history: number[];
  private readonly distinct: number[] = [];   // the history's ids once each (the device's penalty set)
  private readonly seen = new Set<number>();
  private held = '';          // text not yet emitted because it may begin a stop string

  constructor(tok: Tokenizer | null, prompt: number[], readonly opts: DecodeOptions) {
    this.sampler = new Sampler(opts.sampling);
    this.eos = new Set(opts.eosIds ?? []);
    this.stops = (opts.stop ?? []).filter(s => s.length > 0);
    this.decoder = tok ? new StreamDecoder(tok, true) : null;
    this.history = [...prompt];
    if (opts.sampling.repetitionPenalty !== 1) for (const id of prompt) this.see(id);
    if (opts.maxTokens <= 0) this.finish = 'length';
  }

  /**
   * Greedy with no repetition penalty: the token is the argmax of the logits alone, which the device can pick
   * (Engine.runArgmax) so that only its id comes back; feed that id to nextId().
   */
  get greedy(): boolean {
    const o = this.sampler.options;
    return o.temperature === 0 && o.repetitionPenalty === 1;
  }

  /**
   * This sequence's draw `ahead` tokens after the next one, on the device (Engine.runArgmax with rows): its settings,
   * seed, draw index (= generated tokens before it, so a seed gives the same tokens with or without pipelining) and
   * penalty history. kernels/sample/sample.ref.ts says how that draw relates to the host Sampler's.
   */
  deviceRow(ahead = 0): SampleRow {
    const history = this.sampler.options.repetitionPenalty !== 1 ? this.distinct.slice() : undefined;
    return { ...this.sampler.options, seed: this.sampler.seed, step: this.ids.length + ahead, history };
  }

  /**
   * The token the device would draw from these logits (the reference of kernels/sample/sample.ts, on the host): for
   * logits that came back anyway (the scheduler's prefix-cache steps), so a seed gives the same tokens either way.
   */
  deviceDraw(logits: Float32Array): number {
    const row = this.deviceRow(), P = paramCols(row.history?.length ?? 0), p = new Float32Array(P);
    encodeRow(p, 0, P, row);
    return sampleRow(logits, 0, logits.length, p).id;
  }

  /** Whether device draws may run ahead of the host: only when no penalty needs the tokens not yet back. */
  get feedsAhead(): boolean { return this.sampler.options.repetitionPenalty === 1; }

  private see(id: number): void {
    if (!this.seen.has(id)) { this.seen.add(id); this.distinct.push(id); }
  }

  /** Sample the next token from `logits`: its piece, or null at EOS. Sets `finish` when this ends the sequence. */
  next(logits: Float32Array): Piece | null {
    return this.nextId(this.sampler.sample(logits, this.history));
  }

  /** Take `id` as the next token (chosen on the device): as next(). */
  nextId(id: number): Piece | null {
    if (this.eos.has(id)) { this.finish = 'eos'; return null; }
    this.history.push(id);
    if (this.sampler.options.repetitionPenalty !== 1) this.see(id);
    this.ids.push(id);
    let text = this.decoder ? this.decoder.push(id) : '';
    if (this.stops.length) {
      this.held += text;
      const hit = firstStop(this.held, this.stops);
      if (hit >= 0) { text = this.held.slice(0, hit); this.held = ''; this.finish = 'stop'; return { id, text }; }
      const keep = stopPrefixLen(this.held, this.stops);
      text = this.held.slice(0, this.held.length - keep);
      this.held = this.held.slice(this.held.length - keep);
    }
    if (this.ids.length >= this.opts.maxTokens) this.finish = 'length';
    return { id, text };
  }

  /** End the sequence (keeping an earlier reason); returns the text still held back or buffered ('' after a stop or an error). */
  close(reason: FinishReason): string {
    this.finish ??= reason;
    if (this.finish === 'stop' || this.finish === 'error') return '';
    const rest = this.held + (this.decoder ? this.decoder.flush() : '');
    this.held = '';
    return rest;
  }
}

/**
 * Yields generated tokens with their text piece; returns the stats. The slot is released at the end.
 * Greedy decode, and sampling on a GPU (Engine.deviceSampling), pick each token on the device; they run one step
 * ahead (Engine.runArgmaxFed; sampling only without a repetition penalty, whose history the host must send): the
 * step that feeds token t is submitted before t is back on the host, so the GPU never waits for the host. The step past the end (it fed the EOS or stop token) is then
 * counted in fedTokens — or undone (Engine.rewind) where the slot is kept and holds only KV caches; where the slot
 * is kept and has recurrent state, decode does not run ahead.
 */
export async function* generate(engine: Engine, tok: Tokenizer | null, prompt: number[], opts: GenerateOptions): AsyncGenerator<Piece, GenerateStats> {
  const seq = new SeqDecoder(tok, prompt, opts);
  const stats: GenerateStats = { promptTokens: prompt.length, generatedTokens: 0, prefillMs: 0, decodeMs: 0, finishReason: 'length', fedTokens: 0 };
  const slot = opts.slot ?? engine.acquire();
  const keep = opts.slot !== undefined;
  try {
    let t0 = performance.now();
    // greedy, or sampling on a GPU: the device picks each token and only its id comes back (no logits readback)
    const onDevice = !seq.greedy && engine.deviceSampling;
    const feed = async (tokens: number[]): Promise<() => Piece | null> => {
      if (seq.greedy || onDevice) { const [r] = await engine.runArgmax([{ slot, tokens }], onDevice ? [seq.deviceRow()] : undefined); return () => seq.nextId(r!.id); }
      const [logits] = await engine.run([{ slot, tokens }]);
      return () => seq.next(logits!);
    };
    const ahead = (seq.greedy || (onDevice && seq.feedsAhead)) && engine.canRunAhead(keep);
    let pick = await feed(prompt);
    stats.prefillMs = performance.now() - t0;
    opts.onPrefilled?.(slot);
    t0 = performance.now();
    if (ahead) yield* decodeAhead(engine, seq, slot, pick, opts.signal, stats, keep, onDevice);
    else while (seq.finish === null) {
      if (opts.signal?.aborted) { seq.finish = 'cancelled'; break; }
      const piece = pick();
      if (piece) yield piece;
      if (seq.finish !== null) break;
      pick = await feed([piece!.id!]);
      stats.fedTokens++;
    }
    stats.decodeMs = performance.now() - t0;
    const rest = seq.close('length');
    if (rest) yield { id: null, text: rest };
    stats.generatedTokens = seq.ids.length;
    stats.finishReason = seq.finish as GenerateStats['finishReason'];
  } finally {
    if (opts.slot === undefined) engine.release(slot);
  }
  return stats;
}

/**
 * Greedy decode (or device draws) run ahead. `queue[j]` will give generated token number seq.ids.length + 1 + j; before
 * waiting for queue[0], the steps feeding the tokens after the queued ones are submitted while the sequence may go on
 * past them (max tokens, the context), in groups of 1, 2, 4, … Engine.stepsPerSubmit steps (one submit each, up to
 * two full groups in flight; 1: one step ahead). The steps queued when the sequence ends fed tokens past its end: they are counted in
 * fedTokens, or undone where the slot is kept (a KV cache).
 */
async function* decodeAhead(engine: Engine, seq: SeqDecoder, slot: number, first: () => Piece | null, signal: AbortSignal | undefined,
  stats: GenerateStats, keep: boolean, onDevice: boolean): AsyncGenerator<Piece> {
  const rows = (ahead: number) => (onDevice ? [seq.deviceRow(ahead)] : undefined);
  const max = seq.opts.maxTokens, group = engine.stepsPerSubmit;
  let size = 1;   // groups of 1, 2, 4, … up to `group`: the GPU starts on the first step, not after a whole group's encoding
  let piece = first();
  if (piece) yield piece;
  if (seq.finish !== null || signal?.aborted) { seq.finish ??= 'cancelled'; return; }
  const queue = [engine.runArgmax([{ slot, tokens: [piece!.id!] }], rows(0))];
  stats.fedTokens++;
  for (;;) {
    // queued steps give tokens up to number seq.ids.length + queue.length: feed ahead those that are not the last
    for (let n: number; queue.length <= group
      && (n = Math.min(size, max - seq.ids.length - queue.length, engine.bounded ? engine.ctx - engine.positions[slot]! : Infinity)) > 0;) {
      const q = queue.length, ps = engine.runArgmaxFedSteps([slot], n, onDevice ? i => rows(q + i) : undefined);
      for (const p of ps) { p.catch(() => {}); queue.push(p); }   // awaited below, or dropped when the sequence ends first
      stats.fedTokens += n;
      size = Math.min(group, 2 * size);
    }
    const [r] = await queue.shift()!;
    piece = seq.nextId(r!.id);
    if (piece) yield piece;
    if (signal?.aborted) seq.finish ??= 'cancelled';
    if (seq.finish !== null) {
      // the steps still queued fed the token that ended the sequence (or the last one before a cancel) and after it
      for (const p of queue) await p.catch(() => {});
      if (keep) { engine.rewind(slot, queue.length); stats.fedTokens -= queue.length; }
      return;
    }
    if (!queue.length) { queue.push(engine.runArgmax([{ slot, tokens: [piece!.id!] }], rows(0))); stats.fedTokens++; }
  }
}

export function firstStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) { const i = text.indexOf(s); if (i >= 0 && (best < 0 || i < best)) best = i; }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
export function stopPrefixLen(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) for (let k = Math.min(s.length - 1, text.length); k > best; k--) if (text.endsWith(s.slice(0, k))) { best = k; break; }
  return best;
}
