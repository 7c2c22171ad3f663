// CPU reference of the f16 GEMMs (matmul_sgmat*.wgsl, matmul_f16.wgsl), f16 rounding emulated: W is f16 (bf16
// weights converted at load); each row of x is scaled by a power of two s (its largest |x| into [2^13, 2^14)) and
// each v = s·x split into hi = f16(v) and lo = f16(v − hi) (matmul_sgmat_prep.wgsl); y = (Σ W·hi + W·lo) / s with
// one f32 accumulator, every product exact in f32 (11 × 11 significant bits). 'single' drops lo: about f16's 2^−11
// relative error per activation.
// Options model the subgroup-matrix kernel's summation: `chunk` restarts the accumulator every chunk K elements and adds
// it into an f32 total (matmul_sgmat's flush, SGMAT_FLUSH_K); `mma` sums as tensor cores do — blocks of `block`
// products added into the accumulator in one step that aligns every term to the largest exponent, drops the bits
// below 24 + extraBits of it and truncates the sum to f32 (round toward zero: the behaviour Fasi et al. 2021 and
// Khattak & Mikaitis 2025 measured on V100…H100). The model is not bit-exact; with extraBits 3 it gives the growth
// of the error with K measured on the H200 (scripts/sgmat_error.ts). `blockScale` (with `chunk`) models the fused x
// split (matmul_sgmat.wgsl FUSED): the row scale s is taken per chunk of K from that chunk's largest |x|, and each
// chunk's sum enters the total as acc·(1/s).
import { applyAct, type Act } from './matmul.ref.ts';

export type F16Mode = 'split' | 'single';
export interface F16RefOptions { chunk?: number; mma?: { block: number; extraBits: number }; blockScale?: boolean }

const f16 = Math.f16round;
const bits = new Float32Array(1), ubits = new Uint32Array(bits.buffer);

/** v rounded to f16's 11 significant bits in integers (ties away from zero), as the kernels do it. */
function hi11(v: number): number {
  bits[0] = v;
  ubits[0] = (ubits[0]! + 0x1000) & 0xffffe000;
  return bits[0]!;
}

/** The power of two 2^k that puts max |row| into [2^13, 2^14) (k clamped to ±100; 1 for a zero or non-finite row). */
export function rowScale(row: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < row.length; i++) m = Math.max(m, Math.abs(row[i]!));
  if (m === 0 || !Number.isFinite(m)) return 1;
  bits[0] = m;
  const e = ((ubits[0]! >>> 23) & 0xff) - 127;
  if (e === -127) return 1;   // f32 subnormal row maximum: the kernel's exponent field is 0
  return 2 ** Math.max(-100, Math.min(100, 13 - e));
}

/** hi = f16(v) and lo = f16(v − hi) of one scaled activation v (hi through the 11-bit integer rounding). */
export function splitF16(v: number): [number, number] {
  const h = hi11(Math.fround(v));
  return [f16(h), f16(Math.fround(Math.fround(v) - h))];
}

/** 2^e ≤ |v| < 2^(e+1), v ≠ 0 */
const expo = (v: number) => Math.floor(Math.log2(Math.abs(v)));
/** v truncated toward zero to a multiple of 2^q */
const truncTo = (v: number, q: number) => { const u = 2 ** q; return Math.trunc(v / u) * u; };

/** One tensor-core step (the `mma` model): acc + Σ p[0 .. n), aligned to the largest exponent, truncated. */
function mmaStep(acc: number, p: Float64Array, n: number, extraBits: number): number {
  let m = Math.abs(acc);
  for (let j = 0; j < n; j++) m = Math.max(m, Math.abs(p[j]!));
  if (m === 0) return 0;
  const q = expo(m) - 23 - extraBits;
  let s = truncTo(acc, q);
  for (let j = 0; j < n; j++) s += truncTo(p[j]!, q);   // multiples of 2^q below 2^(e + 6): exact in f64
  return s === 0 ? 0 : truncTo(s, expo(s) - 23);
}

/**
 * x [R, IN], w [OUT, IN] holding f16 values (as f32), bias [OUT] | null → y [R, OUT]; accumulate adds into y.
 * The sum runs in f32 in index order, hi then lo at each index (the GPU's order differs; both round each step to f32);
 * opt.chunk / opt.mma: the kernel's restarts and the tensor cores' truncating steps (see the top of this file).
 */
export function matmulF16Ref(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array,
  R: number, IN: number, OUT: number, mode: F16Mode, act: Act = 'none', accumulate = false, opt: F16RefOptions = {}): void {
  const hi = new Float32Array(IN), lo = new Float32Array(IN);
  const B = opt.mma?.block ?? 1, ph = new Float64Array(B), pl = new Float64Array(B), chunk = opt.chunk || Infinity;
  if (opt.blockScale && !opt.chunk) throw new Error('matmulF16Ref: blockScale needs chunk');
  const inv = new Float32Array(IN);   // 1/s of each element's chunk (one s a row without blockScale)
  for (let r = 0; r < R; r++) {
    const row = x.subarray(r * IN, (r + 1) * IN), S = opt.blockScale ? chunk : IN;
    for (let c = 0; c < IN; c += S) {
      const part = row.subarray(c, Math.min(IN, c + S)), s = rowScale(part);
      for (let i = c; i < c + part.length; i++) { const [h, l] = splitF16(Math.fround(row[i]! * s)); hi[i] = h; lo[i] = mode === 'split' ? l : 0; inv[i] = 1 / s; }
    }
    const s = opt.blockScale ? 1 : 1 / inv[0]!;   // blockScale: every chunk enters the total scaled already
    for (let o = 0; o < OUT; o++) {
      let acc = 0, total = 0;
      for (let i = 0; i < IN; i += B) {
        if (opt.mma) {
          const n = Math.min(B, IN - i);
          for (let j = 0; j < n; j++) { const wv = w[o * IN + i + j]!; ph[j] = wv * hi[i + j]!; pl[j] = wv * lo[i + j]!; }
          acc = mmaStep(acc, ph, n, opt.mma.extraBits);
          if (mode === 'split') acc = mmaStep(acc, pl, n, opt.mma.extraBits);
        } else {
          const wv = w[o * IN + i]!;
          acc = Math.fround(acc + wv * hi[i]!);   // f16·f16 is exact in f32
          if (mode === 'split') acc = Math.fround(acc + wv * lo[i]!);
        }
        if ((i + B) % chunk === 0) { total = Math.fround(total + (opt.blockScale ? Math.fround(acc * inv[i]!) : acc)); acc = 0; }
      }
      acc = Math.fround(total + (opt.blockScale ? Math.fround(acc * inv[IN - 1]!) : acc));
      let v = applyAct(act, Math.fround(Math.fround(acc / s) + (bias ? bias[o]! : 0)));
      if (accumulate) v += y[r * OUT + o]!;
      y[r * OUT + o] = v;
    }
  }
}
