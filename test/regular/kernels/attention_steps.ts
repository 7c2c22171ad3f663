// What the attention kernel tests share: a step of sequences continuing cached prefixes, and FLA_KERNEL_SDPA forcing.
import type { Cursor } from '../../../src/backend/backend.ts';
import type { StepSpec } from './harness.ts';

export function stepOf(seqs: { slot: number; len: number; pos: number }[]): StepSpec {
  const cursors: Cursor[] = [];
  let start = 0;
  for (const s of seqs) { cursors.push({ slot: s.slot, start, len: s.len, pos: s.pos }); start += s.len; }
  return { ids: new Array(start).fill(0), cursors, keep: [start - 1] };
}

/** Run `f` with FLA_KERNEL_SDPA set to `v` (restored afterwards). */
export async function withSdpa<T>(v: string, f: () => Promise<T>): Promise<T> {
  const prev = process.env.FLA_KERNEL_SDPA;
  process.env.FLA_KERNEL_SDPA = v;
  try { return await f(); } finally { if (prev === undefined) delete process.env.FLA_KERNEL_SDPA; else process.env.FLA_KERNEL_SDPA = prev; }
}

