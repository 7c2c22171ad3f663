// What the attention kernel tests share: a step of sequences continuing cached prefixes, FLA_KERNEL_SDPA forcing, and the
// KV cache's 16-bit words (pack16 / values).
import type { Cursor } from '../../../src/backend/backend.ts';
import type { KvDtype } from '../../../kernels/attention/sdpa.ts';
import { bf16Bits } from '../../../kernels/attention/sdpa.ref.ts';
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

/** the values a cache of state words holds (16-bit pairs decoded) */
export function values(words: Float32Array, dt: KvDtype): Float32Array {
  if (dt === 'f32') return words;
  if (dt === 'f16') return Float32Array.from(new Float16Array(words.buffer, words.byteOffset, words.length * 2));
  const u = new Uint16Array(words.buffer, words.byteOffset, words.length * 2), out = new Uint32Array(u.length);
  for (let i = 0; i < u.length; i++) out[i] = u[i]! << 16;
  return new Float32Array(out.buffer);
}

/** f32 values as a cache's words of 16-bit pairs */
export function pack16(v: Float32Array, dt: 'f16' | 'bf16'): Float32Array {
  const words = new Float32Array(v.length / 2);
  if (dt === 'f16') new Float16Array(words.buffer).set(v);
  else { const u = new Uint16Array(words.buffer); for (let i = 0; i < v.length; i++) u[i] = bf16Bits(v[i]!); }
  return words;
}
