// Tensor comparison for kernel tests (in the spirit of llm.c's check_tensor) and seeded random inputs.
//
// expectClose measures max|got − want| / max|want|: the error relative to the largest reference value,
// so small entries near zero do not need their own tolerance. On failure it throws with the max diff,
// the first mismatching indices with both values, and the seed that reproduces the inputs.
//
// Inputs are fresh each run: the base seed is Date.now() unless FLA_TEST_SEED is set, and each test
// derives its own stream from (base seed, tag), so FLA_TEST_SEED=<base> reproduces any single test,
// whatever the order or the -t filter.

/** Base seed of this run: FLA_TEST_SEED (a u32), else the clock; printed once to stderr so any run can be replayed. */
export const BASE_SEED: number = baseSeed(process.env.FLA_TEST_SEED);
process.stderr.write(`test inputs: seed ${BASE_SEED} (replay with FLA_TEST_SEED=${BASE_SEED})\n`);

function baseSeed(v: string | undefined): number {
  if (v === undefined || v === '') return Date.now() >>> 0;
  if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) throw new Error(`FLA_TEST_SEED=${v}: expected an integer in 0..4294967295`);
  return Number(v);
}

let lastPrng: Prng | null = null;

/** mulberry32 uniform stream with Box–Muller normals. */
export class Prng {
  private s: number;
  private spare: number | null = null;
  constructor(readonly seed: number, readonly tag = '') {
    this.s = seed >>> 0;
    lastPrng = this;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }

  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) { const v = this.spare; this.spare = null; return v; }
    let u = 0;
    while (u === 0) u = this.next();
    const r = Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /** How to get these inputs again. */
  describe(): string {
    return `seed ${BASE_SEED}${this.tag ? `/${this.tag}` : ''} (rerun with FLA_TEST_SEED=${BASE_SEED})`;
  }
}

/** A stream for one test, derived from the run's base seed and a tag (e.g. the test name). */
export function prng(tag: string): Prng {
  let h = BASE_SEED ^ 0x9e3779b9;
  for (let i = 0; i < tag.length; i++) h = Math.imul(h ^ tag.charCodeAt(i), 0x01000193) >>> 0;
  return new Prng(h >>> 0, tag);
}

/** n samples of N(0, scale²) (+ shift). */
export function randn(n: number, rng: Prng, scale = 1, shift = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = shift + scale * rng.normal();
  return out;
}

/** n samples uniform in [lo, hi). */
export function randu(n: number, rng: Prng, lo = 0, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(lo, hi);
  return out;
}

export interface CloseOpts {
  /** Allowed max|Δ| / max|want| (default 1e-4). */
  rtol?: number;
  /** What is being compared, for the message. */
  what?: string;
  /** Seed of the inputs (a Prng, or text); defaults to the most recently created Prng. */
  seed?: Prng | string;
  /** Shape of the flat arrays, to print indices as [i, j, k]. */
  shape?: readonly number[];
}

export interface CloseStats { maxDiff: number; maxRef: number; rel: number; mismatches: number; worst: number }

/** Max |Δ| and max |want|; an element mismatches when |Δ| > rtol·max|want| or either side is not finite. */
export function compare(got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-4): CloseStats & { bad: number[] } {
  let maxRef = 0;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i]!)) maxRef = Math.max(maxRef, Math.abs(want[i]!));
  const scale = maxRef > 0 ? maxRef : 1;
  let maxDiff = 0, worst = -1, mismatches = 0;
  const bad: number[] = [];
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const g = got[i]!, w = want[i]!;
    const d = Number.isFinite(g) && Number.isFinite(w) ? Math.abs(g - w) : Infinity;
    if (d > maxDiff || worst < 0) { maxDiff = d; worst = i; }
    if (!(d <= rtol * scale)) { mismatches++; if (bad.length < 5) bad.push(i); }
  }
  return { maxDiff, maxRef, rel: maxDiff / scale, mismatches, worst, bad };
}

function fmtIndex(i: number, shape?: readonly number[]): string {
  if (!shape || shape.length < 2) return `[${i}]`;
  const idx: number[] = [];
  let r = i;
  for (let d = shape.length - 1; d >= 0; d--) { idx.unshift(r % shape[d]!); r = Math.floor(r / shape[d]!); }
  return `[${idx.join(', ')}]`;
}

const num = (v: number) => (Number.isFinite(v) ? v.toPrecision(7) : String(v));

/** Throw unless max|got − want| ≤ rtol·max|want| elementwise (NaN/Inf always fail). Returns the stats. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, opts: CloseOpts = {}): CloseStats {
  const rtol = opts.rtol ?? 1e-4;
  const what = opts.what ?? 'tensor';
  const seed = typeof opts.seed === 'string' ? opts.seed : (opts.seed ?? lastPrng)?.describe() ?? 'no seed';
  if (got.length !== want.length)
    throw new Error(`${what}: length ${got.length}, expected ${want.length} [${seed}]`);
  const s = compare(got, want, rtol);
  if (s.mismatches === 0) return s;
  const lines = [
    `${what}: ${s.mismatches} of ${want.length} elements differ by more than rtol ${rtol} × max|want| ${num(s.maxRef)}`,
    `  max |Δ| ${num(s.maxDiff)} (${num(s.rel)} relative) at ${fmtIndex(s.worst, opts.shape)}: got ${num(got[s.worst]!)} want ${num(want[s.worst]!)}`,
    '  first mismatches:',
    ...s.bad.map(i => `    ${fmtIndex(i, opts.shape)}: got ${num(got[i]!)} want ${num(want[i]!)} (Δ ${num(Math.abs(got[i]! - want[i]!))})`),
    `  inputs: ${seed}`,
  ];
  throw new Error(lines.join('\n'));
}
