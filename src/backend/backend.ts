// What models and ops see of a device: weights, state slots and step activations (GPU and CPU backends), and
// `run(op, args)`, the one way an op (src/backend/op.ts) reaches a device.
import type { Cursor, StepLayout } from '../util/step.ts';
import type { Adapter, Op } from './op.ts';

export type { Cursor, StepLayout };

/**
 * A weight tensor on a backend (opaque to models except for its shape); dtype is how the device stores it. fp8:
 * F8_E4M3 bytes whose block scales (layout in Fp8Data) are the f32 weight `fp8.scales`.
 */
export interface Weight {
  readonly shape: readonly number[]; readonly dtype: 'f32' | 'bf16' | 'f16' | 'fp8';
  readonly fp8?: { readonly scales: Weight; readonly rp: number; readonly br: number; readonly bc: number } | null;
}

/**
 * F8_E4M3 weight [R, C] (row-major bytes) with block scales: element (r, c) = e4m3(bytes[r·C + c]) ·
 * scale[srow(r)·SC + ⌊c / bc⌋], SC = ⌈C / bc⌉, where the rows are cut into parts of `rp` rows (a plain matrix: one
 * part; an expert tensor [E, gate|up]: parts of I rows), each part with its own ⌈rp / br⌉ scale rows:
 * srow(r) = ⌊r / rp⌋·⌈rp / br⌉ + ⌊(r mod rp) / br⌋.
 */
export interface Fp8Data { bytes: Uint8Array; scale: Float32Array; rp: number; br: number; bc: number }

/** An activation or state tensor on a backend: `planes` × rows × cols, f32. */
export interface Tensor { readonly cols: number; readonly planes: number; readonly rows: 'n' | 'k' | 'slots' }

/** Host-side weight data as read from a checkpoint. */
export interface HostWeight {
  shape: number[];
  f32?: Float32Array;                 // f32 values (vectors always come this way)
  bits16?: Uint16Array;               // raw bf16/f16 bits of a matrix
  /** F8_E4M3 bytes of a matrix with its block scales (fp8 checkpoints, kept as bytes on the GPU). */
  fp8?: Fp8Data;
  dtype: 'f32' | 'bf16' | 'f16' | 'fp8';
  /** Random values in [−scale, scale) made by the backend itself (fla bench --synthetic). */
  synthetic?: { seed: number; scale: number };
  /** Synthetic fp8: rows per scale part (Fp8Data.rp; default all rows). */
  fp8Parts?: number;
}

/**
 * One per-slot state tensor of `cols` f32. `tokenCols` marks a token-indexed state (a KV cache: row p of
 * `tokenCols` f32 holds token p): a snapshot after d tokens needs only its first d rows.
 */
export interface StateSpec { key: string; cols: number; tokenCols?: number }

/** A copy of one slot's state after `depth` tokens, held by the backend (prefix cache, state files). */
export interface Snapshot { readonly depth: number; readonly bytes: number }

/** f32 count of each state's part of a snapshot after `depth` tokens, in allocState order. */
export function snapshotParts(specs: readonly StateSpec[], depth: number): number[] {
  return specs.map(s => (s.tokenCols ? Math.min(s.cols, depth * s.tokenCols) : s.cols));
}

/** Whether a step keeps every row in order (keep = 0..n−1): its kept rows are its rows (Backend.keptView). */
export function keepsAll(step: StepLayout): boolean {
  const n = step.ids.length;
  return step.keep.length === n && step.keep.every((r, i) => r === i);
}

/** Opaque recorded work of one step (GPU dispatches), reusable while `epoch` holds. */
export interface StepRecording { epoch: number; items: unknown[] }   // per-slot state of `cols` f32

/**
 * Resources of one device: weights, per-slot state, activations of the current packed step. Ops live in
 * kernels/ (each `<op>.ts` declares an Op; `run` records its launches on the GPU, runs its `.ref.ts` on the CPU).
 */
export interface Backend {
  readonly kind: 'gpu' | 'cpu';
  readonly name: string;
  /** What ops' `select` sees of the device. */
  readonly adapter: Adapter;
  /** Run (record) op `op` on the current step with arguments `a`. */
  run<A>(op: Op<A>, a: A): Promise<void>;
  /**
   * The largest number of tokens one step may pack, measured: the GPU backend runs `dryRun` (one model forward)
   * on a one-token step that records and computes nothing, noting the widest per-token activation and op
   * scratch (of every variant) it asks for, against the adapter's binding limit. The CPU backend has no such
   * limit and does not call `dryRun`.
   */
  stepLimit(dryRun: () => Promise<unknown>): Promise<number>;
  weight(name: string, w: HostWeight, matrix: boolean): Weight;
  allocState(specs: StateSpec[], slots: number): void;
  state(key: string): Tensor;
  resetSlot(slot: number): void;
  /** Copy slot `slot`'s state as it stands after `depth` tokens into a new snapshot (ordered after earlier work). */
  snapshot(slot: number, depth: number): Snapshot;
  /** Put a snapshot's state into `slot` (token-indexed states: their first `depth` rows). */
  restore(snap: Snapshot, slot: number): void;
  /** A snapshot's values on the host (the states' parts back to back, as snapshotParts lists them), and back. */
  readSnapshot(snap: Snapshot): Promise<Float32Array>;
  uploadSnapshot(data: Float32Array, depth: number): Snapshot;
  freeSnapshot(snap: Snapshot): void;
  /** The state specs of the last allocState. */
  readonly stateSpecs: readonly StateSpec[];

  /**
   * Begin a packed step. `feed` (only where `feedsIds`): the step's token ids are the first N u32 of that tensor as
   * the device holds it when the step runs (the argmax of the step before: pipelined decode); step.ids are ignored.
   */
  beginStep(step: StepLayout, feed?: Tensor): void;
  /** Whether beginStep takes `feed` (the GPU backend; the CPU backend's host knows every id before a step). */
  readonly feedsIds: boolean;
  act(name: string, cols: number, opts?: { planes?: number; rows?: 'n' | 'k' }): Tensor;
  plane(t: Tensor, i: number): Tensor;
  /**
   * `x` (a one-plane 'n' tensor) as the step's kept rows, a 'k' tensor over the same memory, when those are all of
   * its rows in order (keep = 0..n−1: every decode step of one token a sequence); else null (gather_rows copies them).
   * Steps come from the engine with increasing kept rows, so this is k = n: fixed by a replayed step's shape key.
   */
  keptView(x: Tensor): Tensor | null;

  /** Tests and tools: set / fetch a tensor's contents (all planes × capacity rows × cols, f32). */
  write(t: Tensor, data: Float32Array): void;
  read(t: Tensor): Promise<Float32Array>;
  /** Capacity rows of a tensor (the plane stride is capacity × cols). */
  capacity(t: Tensor): number;
  /**
   * Step recording for replay: `recording()` returns what the current step recorded plus an epoch that changes
   * whenever buffers are reallocated; `replay(rec)` re-issues such a recording for a step of the same shape.
   * The CPU backend returns null (it always runs the model).
   */
  recording(): StepRecording | null;
  replay(rec: StepRecording): boolean;
  /** Run the recorded step and return the rows of `logits` ([K, V]); the GPU backend submits the step before returning. */
  endStep(logits: Tensor): Promise<Float32Array>;
  /**
   * Optional (GPU): the steps begun and ended from beginSteps to endSteps go to the device in one submit with one
   * readback, endSteps submitting them; their rows take `readBytes` at most. Nothing that submits on its own
   * (read, snapshot, restore) may come between.
   */
  beginSteps?(readBytes: number): void;
  endSteps?(): void;
  destroy(): void;
}
