// Runs packed steps of a loaded model: owns the state slots, splits work to the backend's step budget,
// and returns the kept logits.
import type { Cursor, StepLayout, StepRecording, Tensor } from '../backend/backend.ts';
import { StateSizeError } from '../backend/gpu.ts';
import type { Model } from '../load/model.ts';
import { FlaError, GpuError } from '../util/errors.ts';
import { checkLogits } from '../util/finite.ts';
import { knob } from '../util/knobs.ts';

/** One sequence's part of a step: its slot and the tokens to feed. keepAll returns logits for every token. */
export interface SeqInput { slot: number; tokens: ArrayLike<number>; keepAll?: boolean }

export class Engine {
  readonly vocab: number;
  readonly hidden: number;
  /** Tokens one step packs at most: the constructor's maxStepTokens, lowered by the backend's measured limit on the first run. */
  budget: number;
  private measured = false;
  private freeSlots: number[];
  /** Tokens each slot's state holds (positions for attention, limits for the KV cache). */
  readonly positions: number[];

  /** Tokens one sequence may hold: the KV cache size of attention layers (unbounded for recurrent models). */
  readonly ctx: number;
  private readonly bounded: boolean;

  constructor(readonly model: Model, readonly slots = 1, maxStepTokens = 512, ctx?: number) {
    const d = model.arch.dims(model.cfg);
    this.bounded = d.maxContext !== null;
    this.ctx = Math.min(ctx ?? 4096, d.maxContext ?? Infinity);
    this.vocab = d.vocab;
    this.hidden = d.hidden;
    this.budget = Math.max(1, maxStepTokens);
    allocStateOrExplain(model, this.ctx, slots, this.bounded);
    this.freeSlots = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    this.positions = new Array(slots).fill(0);
  }

  /** Take a free slot with zeroed state. */
  acquire(): number {
    const s = this.freeSlots.pop();
    if (s === undefined) throw new FlaError(`no free sequence slot (all ${this.slots} in use)`);
    this.model.backend.resetSlot(s);
    this.positions[s] = 0;
    return s;
  }

  release(slot: number): void {
    if (!this.freeSlots.includes(slot)) this.freeSlots.push(slot);
  }

  /** Measure the backend's step limit for this model (run() does it before its first step). */
  async ready(): Promise<void> {
    if (this.measured) return;
    const m = this.model;
    this.budget = Math.max(1, Math.min(this.budget, await m.backend.stepLimit(() => m.arch.forward(m.backend, m.weights, m.cfg))));
    this.measured = true;
  }

  /**
   * Feed tokens of several sequences (each continues from its slot's state). Returns, per sequence, its kept
   * logits: the last token's row, or every token's rows with keepAll. Work beyond the step budget is split.
   */
  async run(seqs: SeqInput[]): Promise<Float32Array[]> {
    await this.ready();
    const V = this.vocab;
    const outs = seqs.map(s => new Float32Array((s.keepAll ? s.tokens.length : 1) * V));
    const done = seqs.map(() => 0);
    for (const s of seqs) {
      if (s.tokens.length === 0) throw new FlaError('empty token sequence');
      if (this.bounded && this.positions[s.slot]! + s.tokens.length > this.ctx)
        throw new FlaError(`sequence of ${this.positions[s.slot]! + s.tokens.length} tokens exceeds the context of ${this.ctx} tokens`);
      for (let i = 0; i < s.tokens.length; i++) {
        const t = s.tokens[i]!;
        if (!Number.isInteger(t) || t < 0 || t >= V) throw new FlaError(`token id ${t} is out of range for a vocabulary of ${V}`);
      }
    }
    while (done.some((d, i) => d < seqs[i]!.tokens.length)) {
      // pack as many pending tokens as the budget allows, in sequence order
      let n = 0;
      const cursors: Cursor[] = [], owners: number[] = [], ids: number[] = [], keep: number[] = [], keepOwner: [number, number][] = [];
      for (let i = 0; i < seqs.length && n < this.budget; i++) {
        const s = seqs[i]!, left = s.tokens.length - done[i]!;
        if (left === 0) continue;
        const take = Math.min(left, this.budget - n);
        cursors.push({ slot: s.slot, start: n, len: take, pos: this.positions[s.slot]! });
        this.positions[s.slot]! += take;
        owners.push(i);
        for (let t = 0; t < take; t++) ids.push(s.tokens[done[i]! + t]!);
        const end = done[i]! + take;
        if (s.keepAll) for (let t = 0; t < take; t++) { keep.push(n + t); keepOwner.push([i, done[i]! + t]); }
        else if (end === s.tokens.length) { keep.push(n + take - 1); keepOwner.push([i, 0]); }
        n += take;
        done[i] = end;
      }
      const layout: StepLayout = { ids: Int32Array.from(ids), cursors, keep: Int32Array.from(keep) };
      const logits = await this.step(layout);
      keepOwner.forEach(([i, row], j) => outs[i]!.set(logits.subarray(j * V, (j + 1) * V), row * V));
    }
    return outs;
  }

  // Steps of one shape (tokens, kept rows, sequences) record the same dispatches: replay them instead of re-running
  // the model's JS (decode steps are dominated by it). Positions and ids reach kernels through per-step buffers.
  private recordings = new Map<string, { rec: StepRecording; logits: Tensor }>();

  private async step(layout: StepLayout): Promise<Float32Array> {
    const o = this.model.backend;
    o.beginStep(layout);
    const key = `${layout.ids.length},${layout.keep.length},${layout.cursors.length}`;
    const hit = this.recordings.get(key);
    let logits: Tensor;
    if (hit && knob('FLA_NO_REPLAY') !== '1' && o.replay(hit.rec)) logits = hit.logits;
    else {
      logits = await this.model.arch.forward(o, this.model.weights, this.model.cfg);
      const rec = o.recording();
      if (rec && layout.ids.length <= 16) this.recordings.set(key, { rec, logits });   // decode-sized steps repeat
    }
    if (layout.keep.length === 0) {
      await o.endStep(logits);
      return new Float32Array(0);
    }
    const out = await o.endStep(logits);
    checkLogits(out, this.vocab);   // NaN/Inf would otherwise sample as token 0 (often EOS) and look like success
    return out;
  }
}

/** Allocate the state slots; state too large for the device is refused with the flags that shrink it. */
function allocStateOrExplain(model: Model, ctx: number, slots: number, bounded: boolean): void {
  const specs = model.arch.state(model.cfg, ctx);
  try {
    model.backend.allocState(specs, slots);
  } catch (e) {
    if (!(e instanceof StateSizeError)) throw e;
    // Does this state shrink with the context (a KV cache) or only with the number of sequences?
    const smaller = bounded && ctx > 16 ? model.arch.state(model.cfg, Math.floor(ctx / 2)).find(s => s.key === e.key) : undefined;
    const full = specs.find(s => s.key === e.key)!;
    const byCtx = smaller !== undefined && smaller.cols < full.cols;
    const what = e.fit >= 1 ? `--max-batch (at most ${e.fit} sequences fit${byCtx ? ` at --ctx ${ctx}` : ''})` : '--max-batch';
    throw new GpuError(`${e.message.replace(/; at most \d+ fit$/, '')}: lower ${what}${byCtx ? ' or --ctx' : ''}`);
  }
}
