// Single-sequence generation on the engine: chunked prefill, then one decode step per token, with
// sampling, EOS, stop strings (held back until they can no longer match) and cancellation.
import { StreamDecoder } from '../tokenizer/hf.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import type { Engine } from './engine.ts';
import { Sampler, type SamplingOptions } from './sample.ts';

export interface GenerateOptions {
  maxTokens: number;
  sampling: SamplingOptions;
  stop?: string[];
  eosIds?: number[];
  signal?: AbortSignal;
  /** Continue this slot's state (multi-turn chat); it is then not released. Default: a fresh slot. */
  slot?: number;
}

export interface GenerateStats {
  promptTokens: number; generatedTokens: number;
  prefillMs: number; decodeMs: number;
  finishReason: 'eos' | 'stop' | 'length' | 'cancelled';
  /** Generated tokens the slot's state has consumed (the last sampled one usually has not been fed). */
  fedTokens: number;
}

export interface Piece { id: number | null; text: string }

/** Yields generated tokens with their text piece; returns the stats. The slot is released at the end. */
export async function* generate(engine: Engine, tok: Tokenizer | null, prompt: number[], opts: GenerateOptions): AsyncGenerator<Piece, GenerateStats> {
  const sampler = new Sampler(opts.sampling);
  const eos = new Set(opts.eosIds ?? []);
  const stops = (opts.stop ?? []).filter(s => s.length > 0);
  const decoder = tok ? new StreamDecoder(tok, true) : null;
  const history = [...prompt];
  const stats: GenerateStats = { promptTokens: prompt.length, generatedTokens: 0, prefillMs: 0, decodeMs: 0, finishReason: 'length', fedTokens: 0 };
  const slot = opts.slot ?? engine.acquire();
  let held = '';          // text not yet emitted because it may begin a stop string
  try {
    let t0 = performance.now();
    let [logits] = await engine.run([{ slot, tokens: prompt }]);
    stats.prefillMs = performance.now() - t0;
    t0 = performance.now();
    while (stats.generatedTokens < opts.maxTokens) {
      if (opts.signal?.aborted) { stats.finishReason = 'cancelled'; break; }
      const id = sampler.sample(logits!, history);
      if (eos.has(id)) { stats.finishReason = 'eos'; break; }
      history.push(id);
      stats.generatedTokens++;
      let text = decoder ? decoder.push(id) : '';
      if (stops.length) {
        held += text;
        const hit = firstStop(held, stops);
        if (hit >= 0) { yield { id, text: held.slice(0, hit) }; held = ''; stats.finishReason = 'stop'; break; }
        const keep = stopPrefixLen(held, stops);
        text = held.slice(0, held.length - keep);
        held = held.slice(held.length - keep);
      }
      yield { id, text };
      if (stats.generatedTokens >= opts.maxTokens) break;
      [logits] = await engine.run([{ slot, tokens: [id] }]);
      stats.fedTokens++;
    }
    stats.decodeMs = performance.now() - t0;
    const rest = stats.finishReason === 'stop' ? '' : held + (decoder ? decoder.flush() : '');
    if (rest) yield { id: null, text: rest };
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
