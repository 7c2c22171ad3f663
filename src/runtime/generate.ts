// Single-sequence generation on the engine (fla run, fla chat): chunked prefill, then one decode step per token,
// with cancellation. The per-sequence part (sampling, EOS, stop strings held back until they can no longer match,
// max tokens) is SeqDecoder, which the scheduler uses too.
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { StreamDecoder } from '../tokenizer/hf.ts';
import type { Engine } from './engine.ts';
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
  private held = '';          // text not yet emitted because it may begin a stop string

  constructor(tok: Tokenizer | null, prompt: number[], readonly opts: DecodeOptions) {
    this.sampler = new Sampler(opts.sampling);
    this.eos = new Set(opts.eosIds ?? []);
    this.stops = (opts.stop ?? []).filter(s => s.length > 0);
    this.decoder = tok ? new StreamDecoder(tok, true) : null;
    this.history = [...prompt];
    if (opts.maxTokens <= 0) this.finish = 'length';
  }

  /** Sample the next token from `logits`: its piece, or null at EOS. Sets `finish` when this ends the sequence. */
  next(logits: Float32Array): Piece | null {
    const id = this.sampler.sample(logits, this.history);
    if (this.eos.has(id)) { this.finish = 'eos'; return null; }
    this.history.push(id);
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

/** Yields generated tokens with their text piece; returns the stats. The slot is released at the end. */
export async function* generate(engine: Engine, tok: Tokenizer | null, prompt: number[], opts: GenerateOptions): AsyncGenerator<Piece, GenerateStats> {
  const seq = new SeqDecoder(tok, prompt, opts);
  const stats: GenerateStats = { promptTokens: prompt.length, generatedTokens: 0, prefillMs: 0, decodeMs: 0, finishReason: 'length', fedTokens: 0 };
  const slot = opts.slot ?? engine.acquire();
  try {
    let t0 = performance.now();
    let [logits] = await engine.run([{ slot, tokens: prompt }]);
    stats.prefillMs = performance.now() - t0;
    opts.onPrefilled?.(slot);
    t0 = performance.now();
    while (seq.finish === null) {
      if (opts.signal?.aborted) { seq.finish = 'cancelled'; break; }
      const piece = seq.next(logits!);
      if (piece) yield piece;
      if (seq.finish !== null) break;
      [logits] = await engine.run([{ slot, tokens: [piece!.id!] }]);
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
