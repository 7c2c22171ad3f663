// Runs packed steps of a loaded model: owns the state slots, splits work to the backend's step budget,
// and returns the kept logits.
import type { Backend, Cursor, StepLayout, StepRecording, Tensor } from '../backend/backend.ts';
import type { HeadArgmax } from '../models/arch.ts';
import { StateSizeError } from '../backend/gpu.ts';
import type { Model } from './model.ts';
import { FlaError, GpuError } from '../util/errors.ts';
import { checkLogits, NonFiniteError } from '../util/finite.ts';
import { argmax } from '../../kernels/sample/argmax.ts';
import { encodeRow, paramCols, sample, type SampleRow } from '../../kernels/sample/sample.ts';
import { knob } from '../util/knobs.ts';
import { argmax as hostArgmax } from './sample.ts';

/** One sequence's part of a step: its slot and the tokens to feed. keepAll returns logits for every token. */
export interface SeqInput { slot: number; tokens: ArrayLike<number>; keepAll?: boolean }

/** A greedy choice: the token id, and whether its logits row held NaN/±Inf. */
export interface Pick { id: number; nonFinite: boolean }

/** A greedy call, registered when it is made: its sequences, its result, and its last step's device ids. */
interface Greedy {
  slots: number[]; result: Promise<Pick[]>; resolve: (v: Pick[]) => void; reject: (e: unknown) => void;
  ids: Tensor | null; keptSlots: number[] | null;
  /** Where the call is one of runArgmaxFedSteps' grouped steps: whether it opens or closes the group. */
  group?: StepGroup;
}

interface StepGroup { first: boolean; last: boolean; readBytes: number }

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
  readonly bounded: boolean;

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
    // measured as a greedy step (the head's argmax scratch counted too)
    const o = m.backend;
    this.budget = Math.max(1, Math.min(this.budget, await o.stepLimit(() => m.arch.forward(o, m.weights, m.cfg, argmaxPick(o)))));
    this.measured = true;
  }

  /**
   * Feed tokens of several sequences (each continues from its slot's state). Returns, per sequence, its kept
   * logits: the last token's row, or every token's rows with keepAll. Work beyond the step budget is split.
   */
  async run(seqs: SeqInput[]): Promise<Float32Array[]> {
    const V = this.vocab;
    const outs = seqs.map(s => new Float32Array((s.keepAll ? s.tokens.length : 1) * V));
    await this.steps(seqs, 'logits', (i, row, data, j) => outs[i]!.set(data.subarray(j * V, (j + 1) * V), row * V));
    return outs;
  }

  /** Whether generation should sample on the device (GPU backends, unless FLA_HOST_SAMPLING=1). */
  get deviceSampling(): boolean { return this.model.backend.kind === 'gpu' && knob('FLA_HOST_SAMPLING') !== '1'; }

  /**
   * Feed tokens as run() does and choose each sequence's next token greedily on the device: only the ids (and
   * whether the last row's logits held NaN/±Inf) come back, not the logits. Same choice as sample.ts's argmax.
   * With `rows` (per sequence; null: greedy), the device draws each token as kernels/sample/sample.ts does instead.
   */
  async runArgmax(seqs: SeqInput[], rows?: (SampleRow | null)[]): Promise<Pick[]> {
    const g = this.greedyCall(seqs.map(s => s.slot));   // before any await: a runArgmaxFed may follow at once
    try {
      if (seqs.some(s => s.keepAll)) throw new FlaError('runArgmax: keepAll is not supported');
      let outs: Pick[];
      if (!rows && knob('FLA_HOST_ARGMAX') === '1') {   // as before device sampling: logits back, argmax on the host
        const ls = await this.run(seqs);
        outs = ls.map(l => ({ id: hostArgmax(l), nonFinite: false }));
      } else outs = await this.argmaxSteps(seqs, g, null, rows);
      g.resolve(outs);
      return failNonFinite(outs);
    } catch (e) { g.reject(e); throw e; }
  }

  /**
   * `count` pipelined decode steps at once, as that many runArgmaxFed calls in a row (each fed the token the step
   * before chose), grouped into one submit with one readback where the backend can (Backend.beginSteps): the submit
   * and the readback's map are paid once, not per step. Every step runs whatever tokens come, so the caller asks
   * only for steps it may need and undoes (rewind) or counts the rest, as for one step ahead. `rows(i)`: step i's
   * sampling rows (runArgmaxFed's `rows`). One promise per step, in order.
   */
  runArgmaxFedSteps(slots: number[], count: number, rows?: (i: number) => (SampleRow | null)[] | undefined): Promise<Pick[]>[] {
    const o = this.model.backend;
    // grouped only where every step is sure to reach the backend (a step refused at its call would leave the group open)
    const grouped = count > 1 && !!o.beginSteps && o.feedsIds && this.measured && knob('FLA_HOST_ARGMAX') !== '1' && slots.length <= this.budget
      && (!this.bounded || slots.every(s => this.positions[s]! + count <= this.ctx));
    const readBytes = count * 8 * slots.length;   // each step's kept rows: an id and a flag per sequence
    return Array.from({ length: count }, (_, i) => {
      this.nextGroup = grouped ? { first: i === 0, last: i === count - 1, readBytes } : undefined;
      try { return this.runArgmaxFed(slots, rows?.(i)); } finally { this.nextGroup = undefined; }
    });
  }

  /** The group of the runArgmaxFed call being made (runArgmaxFedSteps): taken by it before its first await. */
  private nextGroup: StepGroup | undefined;

  /**
   * Decode steps a pipelined decode may group into one submit (runArgmaxFedSteps): FLA_STEPS_PER_SUBMIT, default 8,
   * on backends that group steps; 1 elsewhere.
   */
  get stepsPerSubmit(): number {
    return this.model.backend.beginSteps ? Number(knob('FLA_STEPS_PER_SUBMIT') ?? 8) : 1;
  }

  /**
   * Pipelined greedy decode: feed each slot the token that the previous runArgmax/runArgmaxFed call chose for it,
   * without waiting for that call, so that this step is submitted while the previous one runs. On the GPU the ids
   * go from that step's argmax straight into this step's input on the device; elsewhere this waits for them.
   * `slots` must be the previous greedy call's sequences, in order (one token each: a decode step).
   */
  async runArgmaxFed(slots: number[], rows?: (SampleRow | null)[]): Promise<Pick[]> {
    const prev = this.lastGreedy;
    const g = this.greedyCall(slots);
    g.group = this.nextGroup;
    this.nextGroup = undefined;
    try {
      if (!prev || prev.slots.join() !== slots.join()) throw new Error(`runArgmaxFed: slots ${slots.join(',')} are not the previous greedy call's (${prev?.slots.join(',') ?? 'none'})`);
      let outs: Pick[];
      if (!this.measured) await this.ready();   // once measured, a step is packed (positions advanced) synchronously at the call
      if (this.model.backend.feedsIds && knob('FLA_HOST_ARGMAX') !== '1' && slots.length <= this.budget) outs = await this.argmaxSteps(slots.map(slot => ({ slot, tokens: [0] })), g, prev, rows);
      else {
        const r = await prev.result;
        outs = await this.argmaxSteps(slots.map((slot, i) => ({ slot, tokens: [r[i]!.id] })), g, null, rows);
      }
      g.resolve(outs);
      return failNonFinite(outs);
    } catch (e) { g.reject(e); throw e; }
  }

  /**
   * Whether generation may run one pipelined step ahead: the step past a sequence's end (fed the token that ended it)
   * leaves its state one token further than a serial run would. Where the state is kept afterwards (`keep`: chat
   * turns) that can be undone (rewind) only when every state is a KV cache.
   */
  canRunAhead(keep: boolean): boolean {
    if (knob('FLA_PIPELINE') === '0' || knob('FLA_HOST_ARGMAX') === '1') return false;
    return !keep || this.kvOnly;
  }

  /** Forget the last `n` tokens of a slot whose states are all KV caches (their rows are overwritten later). */
  rewind(slot: number, n: number): void {
    if (!this.kvOnly) throw new Error('rewind: the slot has recurrent state');
    this.positions[slot] = Math.max(0, this.positions[slot]! - n);
  }

  private get kvOnly(): boolean { return this.model.backend.stateSpecs.every(s => s.tokenCols !== undefined); }

  private greedyCall(slots: number[]): Greedy {
    let resolve!: (v: Pick[]) => void, reject!: (e: unknown) => void;
    const result = new Promise<Pick[]>((res, rej) => { resolve = res; reject = rej; });
    result.catch(() => {});   // a fed call awaits it; nobody else need
    const g: Greedy = { slots, result, resolve, reject, ids: null, keptSlots: null };
    this.lastGreedy = g;
    return g;
  }

  private async argmaxSteps(seqs: SeqInput[], g: Greedy, fedFrom: Greedy | null, rows?: (SampleRow | null)[]): Promise<Pick[]> {
    const outs = seqs.map(() => ({ id: 0, nonFinite: false }));
    await this.steps(seqs, rows ? 'sample' : 'argmax', (i, _row, data, j) => { outs[i] = { id: data[2 * j]!, nonFinite: data[2 * j + 1]! !== 0 }; }, g, fedFrom, rows);
    return outs;
  }

  /**
   * Pack and run steps within the budget; `got(seq, row, data, j)` receives kept row j of each step's output.
   * Greedy calls pass their registration `g` (its device ids are noted); `fedFrom`: the ids are that call's.
   */
  private async steps(seqs: SeqInput[], mode: Mode, got: (seq: number, row: number, data: Float32Array, j: number) => void,
    g: Greedy | null = null, fedFrom: Greedy | null = null, rows?: (SampleRow | null)[]): Promise<void> {
    if (!this.measured) await this.ready();   // once measured, a step is packed (positions advanced) synchronously at the call
    const V = this.vocab;
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
      const cursors: Cursor[] = [], ids: number[] = [], keep: number[] = [], keepOwner: [number, number][] = [];
      for (let i = 0; i < seqs.length && n < this.budget; i++) {
        const s = seqs[i]!, left = s.tokens.length - done[i]!;
        if (left === 0) continue;
        const take = Math.min(left, this.budget - n);
        cursors.push({ slot: s.slot, start: n, len: take, pos: this.positions[s.slot]! });
        this.positions[s.slot]! += take;
        for (let t = 0; t < take; t++) ids.push(s.tokens[done[i]! + t]!);
        const end = done[i]! + take;
        if (s.keepAll) for (let t = 0; t < take; t++) { keep.push(n + t); keepOwner.push([i, done[i]! + t]); }
        else if (end === s.tokens.length) { keep.push(n + take - 1); keepOwner.push([i, 0]); }
        n += take;
        done[i] = end;
      }
      const layout: StepLayout = { ids: Int32Array.from(ids), cursors, keep: Int32Array.from(keep) };
      const data = await this.step(layout, keep.length ? mode : 'logits', g, fedFrom, mode === 'sample' && keep.length ? sampleParams(keepOwner.map(([i]) => rows![i] ?? null)) : null);
      keepOwner.forEach(([i, row], j) => got(i, row, data, j));
    }
  }

  /** What the next runArgmaxFed continues from: the last greedy call (registered when it was made). */
  private lastGreedy: Greedy | null = null;
  /** Steps are begun and submitted one at a time, in call order (the backend holds one open step). */
  private submitted: Promise<void> = Promise.resolve();

  // Steps of one shape (tokens, kept rows, sequences) record the same dispatches: replay them instead of re-running
  // the model's JS (decode steps are dominated by it). Positions and ids reach kernels through per-step buffers.
  private recordings = new Map<string, { rec: StepRecording; out: Tensor; ids: Tensor | null }>();

  /** Dispatches the last recorded step of each shape issues (fla bench's dispatches_per_token). */
  recordedDispatches(n: number, k: number, b: number, mode: 'logits' | 'argmax' | 'sample'): number | null {
    return this.recordings.get(`${n},${k},${b},${mode}`)?.rec.items.length ?? null;
  }

  /**
   * Begin, record or replay, and submit one step, after the previous step's submit (calls queue up in call order);
   * the promise gives its kept rows once they are back. `fedFrom`: the token ids are that greedy call's, on the device.
   */
  private async step(layout: StepLayout, mode: Mode, g: Greedy | null, fedFrom: Greedy | null, params: SampleParams | null = null): Promise<Float32Array> {
    const prev = this.submitted;
    let submitted!: () => void;
    this.submitted = new Promise(r => { submitted = r; });
    let pending: Promise<Float32Array>;
    const o = this.model.backend;
    try {
      await prev;
      let feed: Tensor | undefined;
      if (fedFrom) {
        // its last step has been submitted (call order); did it keep exactly these sequences' rows, in order?
        if (fedFrom.ids && fedFrom.keptSlots?.join() === layout.cursors.map(c => c.slot).join()) feed = fedFrom.ids;
        else {
          o.endSteps?.();   // a group's steps come back only once submitted (a group's own steps always feed on the device)
          const r = await fedFrom.result; r.forEach((p, i) => { layout.ids[i] = p.id; });
        }
      }
      if (g?.group?.first) o.beginSteps?.(g.group.readBytes);
      o.beginStep(layout, feed);
      const key = `${layout.ids.length},${layout.keep.length},${layout.cursors.length},${mode}${params ? `:${params.cols}` : ''}`;
      // the rows' sampling settings go in before the step's dispatches (a replayed step binds the same tensor)
      const pt = params ? o.act('sample_params', params.cols, { rows: 'k' }) : null;
      if (pt) o.write(pt, params!.data);
      const hit = this.recordings.get(key);
      let out: Tensor, ids: Tensor | null = null;
      if (hit && knob('FLA_NO_REPLAY') !== '1' && o.replay(hit.rec)) ({ out, ids } = hit);
      else {
        // a greedy step: the head may compute the argmax itself (pick.done; blocks.ts logits())
        const pick = mode !== 'logits' ? argmaxPick(o) : undefined;
        out = await this.model.arch.forward(o, this.model.weights, this.model.cfg, mode === 'argmax' ? pick : undefined);
        if (pick) {
          ids = pick.ids;
          if (pt) await sample(o, out, pt, pick.out, ids); else if (!pick.done) await argmax(o, out, pick.out, ids);
          out = pick.out;
        }
        const rec = o.recording();
        if (rec && layout.ids.length <= 16) this.recordings.set(key, { rec, out, ids });   // decode-sized steps repeat
      }
      if (g && mode !== 'logits') {   // the kept rows' sequences, for a fed step that follows
        g.ids = ids;
        g.keptSlots = Array.from(layout.keep, r => layout.cursors.find(c => r >= c.start && r < c.start + c.len)!.slot);
      }
      pending = o.endStep(out);   // the GPU backend has submitted the step when this returns (a group's last: endSteps)
      if (g?.group?.last) o.endSteps?.();
    } catch (e) {
      if (g?.group) o.endSteps?.();   // the group's steps so far still run and come back; later ones run alone
      throw e;
    } finally { submitted(); }
    const data = await pending;
    if (layout.keep.length === 0) return new Float32Array(0);
    // NaN/Inf would otherwise sample as token 0 (often EOS) and look like success; argmax flags them on the device
    if (mode === 'logits') checkLogits(data, this.vocab);
    return data;
  }
}

type Mode = 'logits' | 'argmax' | 'sample';

/** A greedy step's argmax outputs (the step's out and ids tensors), for the model's head to fill (HeadArgmax). */
function argmaxPick(o: Backend): HeadArgmax {
  return { out: o.act('argmax_out', 2, { rows: 'k' }), ids: o.act('argmax_ids', 1, { rows: 'k' }), done: false };
}

/** A step's sampling settings: one params row per kept row (kernels/sample/sample.ref.ts encodeRow). */
interface SampleParams { cols: number; data: Float32Array }

const GREEDY_ROW: SampleRow = { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0, step: 0 };

function sampleParams(rows: (SampleRow | null)[]): SampleParams {
  const cols = Math.max(...rows.map(r => paramCols(r && r.repetitionPenalty !== 1 ? r.history?.length ?? 0 : 0)));
  const data = new Float32Array(rows.length * cols);
  rows.forEach((r, j) => encodeRow(data, j * cols, cols, r ?? GREEDY_ROW));
  return { cols, data };
}

/** The device flags a row with NaN/Inf logits: fail as checkLogits does on the logits path. */
function failNonFinite(outs: { id: number; nonFinite: boolean }[]): { id: number; nonFinite: boolean }[] {
  const bad = outs.findIndex(o => o.nonFinite);
  if (bad >= 0) throw new NonFiniteError(`the model produced a non-finite logit (sequence ${bad} of the step): `
    + 'an activation overflowed or the weights are broken; the output would be garbage, so generation stopped');
  return outs;
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
