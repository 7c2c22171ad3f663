// Loading fixtures onto a backend, and the error measure used against reference logits.
import { join } from 'node:path';
import type { Backend } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { inspectModel, loadWeights, type Model } from '../../src/runtime/model.ts';
import { readTensorFile } from '../../src/load/safetensors.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { gpu } from './gpu.ts';

export type BackendKind = 'cpu' | 'gpu';
export const BACKENDS: BackendKind[] = gpu ? ['cpu', 'gpu'] : ['cpu'];

export function backend(kind: BackendKind): Backend {
  return kind === 'gpu' ? new GpuBackend(gpu!) : new CpuBackend();
}

export function load(dir: string, kind: BackendKind): Model {
  return loadWeights(inspectModel(dir), backend(kind));
}

export function engine(dir: string, kind: BackendKind, slots = 8, maxStep = 4096): Engine {
  return new Engine(load(dir, kind), slots, maxStep);
}

export function reference(dir: string) {
  const m = readTensorFile(join(dir, 'reference.safetensors'));
  return {
    ints: (k: string) => Array.from(m.get(k)!.data as Int32Array),
    floats: (k: string) => m.get(k)!.data as Float32Array,
  };
}

/** max |got − want| / max |want| (the measure for logits). */
export function relErr(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) return Infinity;
  let d = 0, m = 0;
  for (let i = 0; i < want.length; i++) { d = Math.max(d, Math.abs(got[i]! - want[i]!)); m = Math.max(m, Math.abs(want[i]!)); }
  return Number.isNaN(d) ? Infinity : d / m;
}

export function argmaxRows(logits: Float32Array, V: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * V < logits.length; r++) {
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[r * V + v]! > logits[r * V + best]!) best = v;
    out.push(best);
  }
  return out;
}

/** Greedy decode of several sequences together; each prompt prefilled (packed), then one token per step. */
export async function greedyBatch(e: Engine, prompts: number[][], steps: number[]): Promise<number[][]> {
  const slots = prompts.map(() => e.acquire());
  const outs: number[][] = prompts.map(() => []);
  let logits = await e.run(prompts.map((p, i) => ({ slot: slots[i]!, tokens: p })));
  let next = logits.map(l => argmaxRows(l, e.vocab)[0]!);
  let active = prompts.map((_, i) => i);
  while (true) {
    active.forEach((i, j) => outs[i]!.push(next[j]!));
    active = active.filter(i => outs[i]!.length < steps[i]!);
    if (!active.length) break;
    const feed = active.map(i => outs[i]!.at(-1)!);
    logits = await e.run(active.map((i, j) => ({ slot: slots[i]!, tokens: [feed[j]!] })));
    next = logits.map(l => argmaxRows(l, e.vocab)[0]!);
  }
  slots.forEach(s => e.release(s));
  return outs;
}
