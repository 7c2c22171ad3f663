// What the attention kernel tests share: a step of sequences continuing cached prefixes, and FLA_KERNEL_SDPA forcing.
import type { Cursor } from '../../../src/backend/backend.ts';
import type { StepSpec } from './harness.ts';

export function stepOf(seqs: { slot: number; len: number; pos: number }[]): StepSpec {
  const cursors: Cursor[] = [];
  let start = 0;
  for (const s of seqs) { cursors.push({ slot: s.slot, start, len: s.len, pos: s.pos }); start += s.len; }
  return { ids: new Array(start).fill(0), cursors, keep: [start - 1] };
}

/** Run `f` with the environment variable `name` set to `v` (restored afterwards). */
export async function withEnv<T>(name: string, v: string, f: () => Promise<T>): Promise<T> {
  const prev = process.env[name];
  process.env[name] = v;
  try { return await f(); } finally { if (prev === undefined) delete process.env[name]; else process.env[name] = prev; }
}

/** Run `f` with FLA_KERNEL_SDPA set to `v` (restored afterwards). */
export function withSdpa<T>(v: string, f: () => Promise<T>): Promise<T> { return withEnv('FLA_KERNEL_SDPA', v, f); }


/**
 * flash_sgmat's tolerance (max|Δ|/max|want| against the f32 reference): about twice the largest error measured on the
 * H200 (scripts/bench_attn.ts, 512 tokens, GQA 4: 3.9e-7 at D 64, 5.4e-7 at D 128; sdpa_flash 2.1e-7 / 4.4e-7 there;
 * the test's fresh random inputs, f16 cache, D 64, 70 + 20 tokens: 3.0e-7 in one run, 1.73e-6 in the next, seed 898210824).
 */
export const SGMAT_RTOL = 3.5e-6;
