// Continuous batching on one Engine: admits requests into free slots, packs each step from a token budget
// (decode tokens of running sequences first, then the prefill budget shared round-robin by the prompts still
// prefilling, so a long prompt cannot starve a short one), samples and streams per request through the same
// SeqDecoder as generate(), and frees a slot as soon as its sequence ends. Exactly one Engine.run is in flight.
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { FlaError, GpuError, UsageError } from '../util/errors.ts';
import type { Engine, SeqInput } from './engine.ts';
import { SeqDecoder, type FinishReason, type Piece } from './generate.ts';
import type { PrefixCache, PrefixCacheStats } from './prefix_cache.ts';
import type { SamplingOptions } from './sample.ts';

export type { FinishReason } from './generate.ts';

export interface GenRequest {
  prompt: number[];
  maxTokens: number;
  sampling: SamplingOptions;
  stop?: string[];
  /** Default: the scheduler's. */
  eosIds?: number[];
  signal?: AbortSignal;
}

export interface GenResult {
  ids: number[]; text: string; finishReason: FinishReason;
  promptTokens: number; generatedTokens: number;
  /** Prompt tokens whose state came from the prefix cache (not prefilled). */
  cachedTokens: number;
  /** Set when finishReason is 'error' (a failed step, or the scheduler shutting down). */
  error?: Error;
}

/** More requests than --max-batch + --max-queue: the caller should retry later (HTTP 429). */
export class QueueFullError extends FlaError {}
/** The scheduler is draining or closed (HTTP 503). */
export class ClosedError extends FlaError {}

/** One request's output: an async iterator of pieces, and the result once it ends. */
export class GenStream implements AsyncIterable<Piece> {
  readonly result: Promise<GenResult>;
  private pieces: Piece[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private resolve!: (r: GenResult) => void;

  constructor() { this.result = new Promise(r => { this.resolve = r; }); }

  push(p: Piece): void { this.pieces.push(p); this.wake?.(); }

  end(r: GenResult): void { this.ended = true; this.resolve(r); this.wake?.(); }

  async *[Symbol.asyncIterator](): AsyncIterator<Piece> {
    for (;;) {
      while (this.pieces.length) yield this.pieces.shift()!;
      if (this.ended) return;
      await new Promise<void>(r => { this.wake = r; });
      this.wake = null;
    }
  }
}

interface Seq {
  req: GenRequest; stream: GenStream; dec: SeqDecoder;
  slot: number; fed: number; next: number | null; cached: number;
  text: string; done: boolean;
}

export interface SchedulerOptions {
  /** Requests waiting for a slot beyond those running (--max-queue); more are refused with QueueFullError. */
  maxQueue?: number;
  eosIds?: number[];
  /** Restore prompt prefixes from, and checkpoint states into, this cache. */
  prefixCache?: PrefixCache;
}

export interface SchedulerStats {
  running: number; queued: number; slots: number;
  promptTokens: number; generatedTokens: number; steps: number;
  finished: Record<FinishReason, number>;
  /** Generated tokens per second over the last 10 s. */
  tokensPerSecond: number;
  /** Why the device stopped working, or null while it works. */
  failure: string | null;
  prefixCache: PrefixCacheStats | null;
}

const RATE_WINDOW_MS = 10_000;

export class Scheduler {
  readonly maxQueue: number;
  private readonly eosIds: number[];
  private waiting: Seq[] = [];
  private running: Seq[] = [];
  private loopRunning = false;
  private kick: (() => void) | null = null;
  private closed = false;
  private failure: string | null = null;
  private counts = { promptTokens: 0, generatedTokens: 0, steps: 0 };
  private finished: Record<FinishReason, number> = { eos: 0, stop: 0, length: 0, cancelled: 0, error: 0 };
  private recent: [number, number][] = [];   // [time, tokens generated in that step]
  private turn = 0;                          // rotates which prefilling prompt gets a budget's remainder
  private readonly cache: PrefixCache | null;

  constructor(readonly engine: Engine, readonly tokenizer: Tokenizer | null, opts: SchedulerOptions = {}) {
    this.maxQueue = opts.maxQueue ?? 64;
    this.eosIds = opts.eosIds ?? [];
    this.cache = opts.prefixCache?.enabled ? opts.prefixCache : null;
  }

  get slots(): number { return this.engine.slots; }

  /** Longest prompt + max tokens a request may ask for (Infinity for recurrent models). */
  get contextLimit(): number {
    const m = this.engine.model;
    return m.arch.dims(m.cfg).maxContext === null ? Infinity : this.engine.ctx;
  }

  /** Queue a request. Throws (before any GPU work) on a bad prompt, a full queue or a closed scheduler. */
  submit(req: GenRequest): GenStream {
    if (this.closed) throw new ClosedError('the server is shutting down');
    if (this.failure) throw new GpuError(`the device failed: ${this.failure}`);
    if (req.prompt.length === 0) throw new UsageError('the prompt is empty');
    const V = this.engine.vocab;
    for (const t of req.prompt) if (!Number.isInteger(t) || t < 0 || t >= V) throw new UsageError(`token id ${t} is out of range for a vocabulary of ${V}`);
    if (req.prompt.length + req.maxTokens > this.contextLimit)
      throw new UsageError(`prompt (${req.prompt.length} tokens) + max tokens ${req.maxTokens} exceeds the context of ${this.contextLimit} tokens`);
    if (this.running.length + this.waiting.length >= this.slots + this.maxQueue)
      throw new QueueFullError(`too many requests: ${this.slots} running and ${this.maxQueue} queued`);
    const seq: Seq = {
      req, stream: new GenStream(), dec: new SeqDecoder(this.tokenizer, req.prompt, { ...req, eosIds: req.eosIds ?? this.eosIds }),
      slot: -1, fed: 0, next: null, cached: 0, text: '', done: false,
    };
    if (req.maxTokens === 0) { this.finish(seq, 'length'); return seq.stream; }
    req.signal?.addEventListener('abort', () => this.kick?.(), { once: true });
    this.waiting.push(seq);
    this.start();
    return seq.stream;
  }

  stats(): SchedulerStats {
    const now = performance.now();
    this.recent = this.recent.filter(([t]) => now - t < RATE_WINDOW_MS);
    const n = this.recent.reduce((a, [, k]) => a + k, 0);
    return {
      running: this.running.length, queued: this.waiting.length, slots: this.slots, ...this.counts,
      finished: { ...this.finished }, tokensPerSecond: n / (RATE_WINDOW_MS / 1000), failure: this.failure,
      prefixCache: this.cache?.stats() ?? null,
    };
  }

  /** Refuse new requests; wait up to `ms` for the admitted ones to finish, then cancel the rest. */
  async drain(ms: number): Promise<void> {
    this.closed = true;
    const until = performance.now() + ms;
    while ((this.running.length || this.waiting.length) && performance.now() < until) await Bun.sleep(20);
    const shutdown = new ClosedError('the server shut down before the request finished');
    for (const s of [...this.waiting, ...this.running]) this.finish(s, 'error', shutdown);
    this.kick?.();
    while (this.loopRunning) await Bun.sleep(5);
  }

  private start(): void {
    if (this.kick) this.kick();
    else if (!this.loopRunning) { this.loopRunning = true; void this.loop(); }
  }

  private async loop(): Promise<void> {
    try {
      while (!this.closed || this.running.length || this.waiting.length) {
        this.reap();
        this.admit();
        if (!this.running.length) {
          if (this.closed) break;
          await new Promise<void>(r => { this.kick = r; });
          this.kick = null;
          continue;
        }
        await this.step();
        await new Promise(r => setImmediate(r));   // let the server read requests and flush streams between steps
      }
    } finally {
      this.loopRunning = false;
    }
  }

  /** End cancelled requests, queued or running, and free their slots. */
  private reap(): void {
    for (const s of [...this.waiting, ...this.running]) if (s.req.signal?.aborted) this.finish(s, 'cancelled');
  }

  private admit(): void {
    while (this.waiting.length && this.running.length < this.slots) {
      const s = this.waiting.shift()!;
      s.slot = this.engine.acquire();
      this.running.push(s);
      if (!this.cache) continue;
      const r = this.resume(s, true);
      this.cache.record(r.saved);
      // the whole prompt was seen before: sample from its kept logits at once, no prefill step
      if (r.logits && this.advance(s, r.logits.slice())) this.recent.push([performance.now(), 1]);
    }
  }

  private async step(): Promise<void> {
    const plan: { seq: Seq; input: SeqInput; sample: boolean }[] = [];
    let budget = this.engine.budget;
    for (const s of this.running) if (s.next !== null) { plan.push({ seq: s, input: { slot: s.slot, tokens: [s.next] }, sample: true }); budget--; }
    budget = Math.max(budget, Math.min(64, this.engine.budget));   // a batch wider than the budget must not starve new prompts
    const prefilling = this.running.filter(s => s.next === null);
    if (this.cache) for (const s of prefilling) this.cache.recordSaved(this.resume(s).saved);   // another sequence may have checkpointed our prefix
    // with the cache, chunks end on checkpoint boundaries
    const until = (s: Seq) => this.cache ? Math.min(s.req.prompt.length, this.cache.nextBoundary(s.fed)) : s.req.prompt.length;
    const shares = shareBudget(prefilling.map(s => until(s) - s.fed), budget, this.turn++);
    prefilling.forEach((s, i) => {
      const take = shares[i]!;
      if (take === 0) return;
      plan.push({ seq: s, input: { slot: s.slot, tokens: s.req.prompt.slice(s.fed, s.fed + take) }, sample: s.fed + take === s.req.prompt.length });
      s.fed += take;
      this.counts.promptTokens += take;
    });
    // every sequence greedy, or sampling on a GPU (and, with the prefix cache, no prompt chunk in the step: prompt
    // ends keep their logits): the device picks the tokens and only their ids come back
    let logits: Float32Array[] | null = null, ids: number[] | null = null;
    try {
      const keepsLogits = this.cache && plan.some(p => p.seq.next === null);
      const onDevice = !keepsLogits && (plan.every(p => p.seq.dec.greedy) ? 'argmax' : this.engine.deviceSampling ? 'sample' : null);
      const rows = onDevice === 'sample' ? plan.map(p => (p.seq.dec.greedy ? null : p.seq.dec.deviceRow())) : undefined;
      if (onDevice) ids = (await this.engine.runArgmax(plan.map(p => p.input), rows)).map(r => r.id);
      else logits = await this.engine.run(plan.map(p => p.input));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      if (err instanceof GpuError) this.failure = err.message;
      for (const p of plan) this.finish(p.seq, 'error', err);
      return;
    }
    this.counts.steps++;
    if (this.cache) plan.forEach((p, i) => {   // prompt ends keep their logits: a repeat of the whole prompt samples from them
      const s = p.seq, end = s.fed === s.req.prompt.length;
      if (s.next === null && !s.done && (end || s.fed % this.cache!.interval === 0)) this.cache!.insert(s.req.prompt.slice(0, s.fed), s.slot, end && p.sample ? logits![i] : undefined);
    });
    let made = 0;
    plan.forEach((p, i) => {
      if (!p.sample) return;
      p.seq.next = null;
      if (this.advance(p.seq, logits ? logits[i]! : ids![i]!)) made++;
    });
    this.recent.push([performance.now(), made]);
  }

  /** Sample the next token of a sequence (or take the id the device chose) and stream it; true when a token was generated. */
  private advance(s: Seq, logits: Float32Array | number): boolean {
    if (s.done) return false;
    if (s.req.signal?.aborted) { this.finish(s, 'cancelled'); return false; }
    // logits back (prefix cache) while others sample on the device: draw as the device would
    const piece = typeof logits === 'number' ? s.dec.nextId(logits)
      : this.engine.deviceSampling && !s.dec.greedy ? s.dec.nextId(s.dec.deviceDraw(logits)) : s.dec.next(logits);
    if (piece) { this.counts.generatedTokens++; this.emit(s, piece); }
    if (s.dec.finish !== null) this.finish(s, s.dec.finish);
    else s.next = piece!.id;
    return piece !== null;
  }

  /**
   * Restore the deepest checkpoint of s's prompt beyond what its slot holds: the tokens it saved, and with `whole`
   * the logits to sample from when the checkpoint holds the whole prompt.
   */
  private resume(s: Seq, whole = false): { saved: number; logits: Float32Array | null } {
    const hit = this.cache!.lookup(s.req.prompt, undefined, whole);
    if (!hit || hit.depth <= s.fed) return { saved: 0, logits: null };
    this.cache!.restore(hit, s.slot);
    const saved = hit.depth - s.fed;
    this.engine.positions[s.slot] = hit.depth;
    s.fed = hit.depth;
    s.cached += saved;
    return { saved, logits: hit.logits };
  }

  private emit(s: Seq, p: Piece): void {
    s.text += p.text;
    s.stream.push(p);
  }

  private finish(s: Seq, reason: FinishReason, error?: Error): void {
    if (s.done) return;
    s.done = true;
    const rest = s.dec.close(reason);
    if (rest) this.emit(s, { id: null, text: rest });
    this.waiting = this.waiting.filter(x => x !== s);
    const i = this.running.indexOf(s);
    if (i >= 0) {
      const fed = this.engine.positions[s.slot]!;   // tokens in the slot's state: the prompt and the reply tokens fed back
      if (this.cache && reason !== 'error' && fed > 0) this.cache.insert([...s.req.prompt, ...s.dec.ids].slice(0, fed), s.slot);
      this.running.splice(i, 1);
      this.engine.release(s.slot);
    }
    this.finished[reason]++;
    s.stream.end({ ids: s.dec.ids, text: s.text, finishReason: reason, promptTokens: s.req.prompt.length, generatedTokens: s.dec.ids.length, cachedTokens: s.cached, ...(error ? { error } : {}) });
  }
}

/**
 * Split `budget` prefill tokens over prompts with `left[i]` tokens still to feed: equal shares (a prompt needing
 * less than its share gives the rest to the others), the indivisible remainder going first to prompt `turn mod n`
 * onwards so that over successive steps no prompt is always last.
 */
export function shareBudget(left: number[], budget: number, turn = 0): number[] {
  const take = left.map(() => 0);
  let open = left.map((_, i) => i).filter(i => left[i]! > 0);
  while (budget > 0 && open.length) {
    const share = Math.floor(budget / open.length);
    if (share === 0) {
      const start = turn % open.length;
      for (let j = 0; j < budget; j++) take[open[(start + j) % open.length]!]!++;
      break;
    }
    for (const i of open) { const t = Math.min(share, left[i]! - take[i]!); take[i]! += t; budget -= t; }
    open = open.filter(i => take[i]! < left[i]!);
  }
  return take;
}
