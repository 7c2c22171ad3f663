// The interface every architecture file implements (one file per model_type, listed in registry.ts).
import type { Backend, StateSpec, Tensor } from '../backend/backend.ts';
import type { WeightReader } from '../load/weights.ts';

/** What the runtime needs to know of a model up front (the step's memory is measured by the backend, not declared here). */
export interface ModelDims { hidden: number; vocab: number; maxContext: number | null }

export interface Arch<Cfg = any, Weights = any> {
  /** config.json model_type values this file handles. */
  modelTypes: string[];
  /** Typed config with HF field names; UnsupportedModelError for options we don't implement. */
  parseConfig(json: Record<string, unknown>, where: string): Cfg;
  dims(cfg: Cfg): ModelDims;
  /** Per-slot state (recurrent, shift, conv; KV cache sized for `ctx` tokens) for one sequence. */
  state(cfg: Cfg, ctx: number): StateSpec[];
  /** Read and upload every weight; the reader reports missing/extra tensors. */
  load(cfg: Cfg, r: WeightReader, o: Backend): Weights;
  /**
   * Record one packed step; returns the logits tensor [K, V]. `pick` (a greedy step): the head may compute argmax's
   * results for those logits itself (blocks.ts logits()), and then sets pick.done.
   */
  forward(o: Backend, w: Weights, cfg: Cfg, pick?: HeadArgmax): Promise<Tensor>;
}

/**
 * What a greedy step asks of the output head: kernels/sample/argmax.ts's out [K, 2] and ids [K, 1] for the logits.
 * `done`: the head computed them (argmax's first pass in the head GEMV's epilogue); else the engine runs argmax.
 */
export interface HeadArgmax { out: Tensor; ids: Tensor; done: boolean }

export function defineArch<Cfg, Weights>(a: Arch<Cfg, Weights>): Arch<Cfg, Weights> { return a; }
