// The op interface that models record one packed step with; implemented by the GPU and CPU backends.
import type { Act } from '../../kernels/matmul/matmul.ref.ts';
import type { Cursor } from '../../kernels/step.ts';

export type { Act, Cursor };

/** A weight tensor on a backend (opaque to models except for its shape). */
export interface Weight { readonly shape: readonly number[] }

/** An activation or state tensor on a backend: `planes` × rows × cols, f32. */
export interface Tensor { readonly cols: number; readonly planes: number; readonly rows: 'n' | 'k' | 'slots' }

/** Host-side weight data as read from a checkpoint. */
export interface HostWeight {
  shape: number[];
  f32?: Float32Array;                 // f32 values (vectors always come this way)
  bits16?: Uint16Array;               // raw bf16/f16 bits of a matrix
  dtype: 'f32' | 'bf16' | 'f16';
}

/** One packed step: tokens of several sequences back to back, and which token rows to keep logits for. */
export interface StepLayout {
  ids: Int32Array;                    // [N]
  cursors: Cursor[];                  // [B], token ranges in ids, each with its state slot
  keep: Int32Array;                   // [K] rows of ids whose logits come back
}

export interface StateSpec { key: string; cols: number }   // per-slot state of `cols` f32

export interface Backend {
  readonly name: string;
  /** Largest number of tokens one step may pack for a model of width C and vocab V. */
  maxStepTokens(C: number, V: number, planes: number): number;
  weight(name: string, w: HostWeight, matrix: boolean): Weight;
  allocState(specs: StateSpec[], slots: number): void;
  state(key: string): Tensor;
  resetSlot(slot: number): void;
  /** Copy every state tensor of slot `from` into slot `to` (prefix reuse, forks). */
  copySlot(from: number, to: number): void;

  beginStep(step: StepLayout): void;
  act(name: string, cols: number, opts?: { planes?: number; rows?: 'n' | 'k' }): Tensor;
  plane(t: Tensor, i: number): Tensor;

  embed(table: Weight, out: Tensor): Promise<void>;
  layerNorm(x: Tensor, w: Weight, b: Weight | null, eps: number, out: Tensor): Promise<void>;
  matmul(x: Tensor, w: Weight, bias: Weight | null, act: Act, out: Tensor, accumulate?: boolean): Promise<void>;
  tokenShift(h: Tensor, state: Tensor, mix: Weight, out: Tensor): Promise<void>;
  shiftStore(h: Tensor, state: Tensor): Promise<void>;
  wkv7(a: { proj: Tensor; vfirst: Tensor; vmix: Tensor | null; params: Weight; state: Tensor; out: Tensor; D: number; fuseNorm: boolean; gnEps: number }): Promise<void>;
  gatherKept(x: Tensor, out: Tensor): Promise<void>;
  /** Tests and tools: set / fetch a tensor's contents (all planes × capacity rows × cols, f32). */
  write(t: Tensor, data: Float32Array): void;
  read(t: Tensor): Promise<Float32Array>;
  /** Capacity rows of a tensor (the plane stride is capacity × cols). */
  capacity(t: Tensor): number;
  /** Run the recorded step and return the rows of `logits` ([K, V]). */
  endStep(logits: Tensor): Promise<Float32Array>;
  destroy(): void;
}
