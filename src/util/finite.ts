// Non-finite values (NaN, ±Inf) in weights and logits: found with cheap scans so broken numerics fail with one
// line instead of looking like an empty answer that ended at EOS.
import { FlaError } from './errors.ts';

/** A model produced NaN or ±Inf: weights that overflow, or an activation that did. */
export class NonFiniteError extends FlaError {}

/** Index of the first NaN or ±Inf in `a`, or -1. */
export function firstNonFinite(a: Float32Array): number {
  if (a.byteOffset % 4 === 0) {
    const at = firstSetExponent(new Uint32Array(a.buffer, a.byteOffset, a.length), 0x7f800000, 0x00800000, 0x80000000);
    return at < 0 ? -1 : at;
  }
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

/** Index of the first NaN or ±Inf among raw bf16 or f16 bits (all exponent bits set), or -1. */
export function firstNonFinite16(bits: Uint16Array, dtype: 'bf16' | 'f16'): number {
  const exp = dtype === 'bf16' ? 0x7f80 : 0x7c00;
  let from = 0;
  if (bits.byteOffset % 4 === 0) {   // two values per 32-bit word
    const low = exp & -exp;          // lowest exponent bit: exp + low carries into the sign bit exactly when all are set
    const w = firstSetExponent(new Uint32Array(bits.buffer, bits.byteOffset, bits.length >> 1), exp * 0x10001, low * 0x10001, 0x80008000);
    if (w < 0) from = 2 * (bits.length >> 1);
    else from = 2 * w;
  }
  for (let i = from; i < bits.length; i++) if ((bits[i]! & exp) === exp) return i;
  return -1;
}

/**
 * First word in which some field has all the `mask` bits set, found branch-free per block: (x & mask) + carry sets
 * the bit above the field (in `top`) exactly when the field is all ones. Fast enough to scan every weight at load.
 */
function firstSetExponent(words: Uint32Array, mask: number, carry: number, top: number): number {
  // Shifted down one bit so every sum stays a small integer (no overflow past 2^31 into slow double arithmetic).
  const m = mask >>> 1, c = carry >>> 1, t = top >>> 1;
  const BLOCK = 4096;
  for (let b = 0; b < words.length; b += BLOCK) {
    const end = Math.min(b + BLOCK, words.length);
    let acc = 0;
    for (let i = b; i < end; i++) acc |= (((words[i]! >>> 1) & m) + c) & t;
    if (acc !== 0) for (let i = b; i < end; i++) if (((((words[i]! >>> 1) & m) + c) & t) !== 0) return i;
  }
  return -1;
}

/**
 * Throws a NonFiniteError when the logits of a step ([rows, V], as read back) hold a NaN or ±Inf. The one check
 * every step's logits pass, whether they were read back whole or (later) reduced on the GPU to a flag.
 */
export function checkLogits(logits: Float32Array, V: number): void {
  const i = firstNonFinite(logits);
  if (i < 0) return;
  throw new NonFiniteError(`the model produced a non-finite logit (${logits[i]} for token ${i % V} in row ${Math.floor(i / V)} of the step): `
    + 'an activation overflowed or the weights are broken; the output would be garbage, so generation stopped');
}
