// defines: SamplingOptions, DEFAULT_SAMPLING, validateSampling, Rng, Sampler, argmax, logSoftmaxAt (CPU, pure).
import { UsageError } from '../util/errors.ts';

/** temperature 0 = greedy; topK 0, topP 1, minP 0 and repetitionPenalty 1 switch that stage off. */
export interface SamplingOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  seed?: number;
}

/** llama.cpp-like defaults. */
export const DEFAULT_SAMPLING: SamplingOptions = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repetitionPenalty: 1,
});

function isNum(v: unknown): v is number {
  return typeof v === 'number' && !Number.isNaN(v);
}

/** Fills defaults and checks ranges; a bad value raises a one-line UsageError naming the CLI flag. */
export function validateSampling(o: Partial<SamplingOptions>): SamplingOptions {
  const pick = <K extends keyof SamplingOptions>(k: K) => (o[k] === undefined ? DEFAULT_SAMPLING[k] : o[k]);
  const temperature = pick('temperature') as unknown;
  const topK = pick('topK') as unknown;
  const topP = pick('topP') as unknown;
  const minP = pick('minP') as unknown;
  const repetitionPenalty = pick('repetitionPenalty') as unknown;
  const seed = o.seed as unknown;
  const bad = (flag: string, rule: string, v: unknown) => new UsageError(`--${flag} must be ${rule}, got ${String(v)}`);

  if (!isNum(temperature) || !Number.isFinite(temperature) || temperature < 0)
    throw bad('temperature', 'a finite number >= 0', temperature);
  if (!isNum(topK) || !Number.isInteger(topK) || topK < 0) throw bad('top-k', 'an integer >= 0', topK);
  if (!isNum(topP) || !(topP > 0 && topP <= 1)) throw bad('top-p', 'in (0, 1]', topP);
  if (!isNum(minP) || !(minP >= 0 && minP <= 1)) throw bad('min-p', 'in [0, 1]', minP);
  if (!isNum(repetitionPenalty) || !Number.isFinite(repetitionPenalty) || repetitionPenalty <= 0)
    throw bad('repetition-penalty', 'a finite number > 0', repetitionPenalty);
  if (seed !== undefined && (!isNum(seed) || !Number.isSafeInteger(seed) || seed < 0))
    throw bad('seed', `an integer in [0, ${Number.MAX_SAFE_INTEGER}]`, seed);

  const out: SamplingOptions = { temperature, topK, topP, minP, repetitionPenalty } as SamplingOptions;
  if (seed !== undefined) out.seed = seed as number;
  return out;
}

/** A random seed in [0, 2^53). */
export function randomSeed(): number {
  const w = crypto.getRandomValues(new Uint32Array(2));
  return (w[0] & 0x1fffff) * 0x100000000 + w[1];
}

/**
 * xoshiro128** (Blackman & Vigna), state seeded from the 53-bit seed with splitmix64.
 * next() returns a uniform double in [0, 1) with 53 random bits.
 */
export class Rng {
  private s: Uint32Array = new Uint32Array(4);

  constructor(seed: number) {
    let x = BigInt.asUintN(64, BigInt(Math.floor(seed)));
    const M = (1n << 64n) - 1n;
    for (let i = 0; i < 2; i++) {
      x = (x + 0x9e3779b97f4a7c15n) & M;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      z ^= z >> 31n;
      this.s[2 * i] = Number(z & 0xffffffffn);
      this.s[2 * i + 1] = Number(z >> 32n);
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // all-zero state is a fixed point
  }

  /** Next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const s1 = s[1];
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s[2] ^= s[0];
    s[3] ^= s1;
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Index (relative to offset) of the largest value in logits[offset, offset+length); the first one wins ties. */
export function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/** log softmax(logits[offset, offset+length))[index], max-subtracted with f64 accumulation. */
export function logSoftmaxAt(logits: Float32Array, offset: number, length: number, index: number): number {
  if (!(index >= 0 && index < length)) throw new RangeError(`index ${index} outside [0, ${length})`);
  let m = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i];
    if (v > m) m = v;
  }
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(logits[offset + i] - m);
  return logits[offset + index] - m - Math.log(sum);
}

/**
 * CPU sampler. Stage order as in HF / llama.cpp: repetition penalty, (greedy | temperature, top-k, softmax,
 * top-p, min-p, draw). Per-token cost is O(V) plus O(V log k) for top-k; only top-p without top-k sorts, and then
 * only the tokens that survive min-p. Scratch buffers are reused across calls.
 */
export class Sampler {
  readonly options: SamplingOptions;
  readonly seed: number;
  private readonly rng: Rng;
  private vals = new Float32Array(0); // [V] penalised, temperature-scaled logits
  private stamp = new Uint32Array(0); // [V] marks ids already penalised in this call
  private gen = 0;
  private idx = new Int32Array(0); // [V] candidate ids
  private w = new Float64Array(0); // [V] unnormalised probabilities of candidates

  constructor(o: SamplingOptions) {
    this.options = validateSampling(o);
    this.seed = this.options.seed ?? randomSeed();
    this.rng = new Rng(this.seed);
  }

  /** Token id for one row of logits [V]; history holds the ids seen so far (prompt and output). */
  sample(logits: Float32Array, history: ArrayLike<number>): number {
    const V = logits.length;
    const { temperature, topK, topP, minP, repetitionPenalty } = this.options;
    if (V === 0) throw new RangeError('sample: empty logits');
    if (this.vals.length !== V) {
      this.vals = new Float32Array(V);
      this.stamp = new Uint32Array(V);
      this.idx = new Int32Array(V);
      this.w = new Float64Array(V);
      this.gen = 0;
    }
    const vals = this.vals;
    this.prepare(logits, history);
    if (temperature === 0) return argmax(vals);

    const inv = 1 / temperature;
    if (inv === Infinity) return argmax(vals);
    if (inv !== 1) for (let i = 0; i < V; i++) vals[i] *= inv;

    // Top-k (partial selection) or all ids.
    const idx = this.idx;
    let n: number;
    if (topK > 0 && topK < V) n = topKSelect(vals, topK, idx);
    else {
      for (let i = 0; i < V; i++) idx[i] = i;
      n = V;
    }

    // Softmax numerators relative to the max.
    let m = -Infinity;
    for (let j = 0; j < n; j++) if (vals[idx[j]] > m) m = vals[idx[j]];
    if (!Number.isFinite(m)) {
      // All masked, or a temperature so small (below ~1e-38) that the scaled logits left f32's range: greedy on the
      // unscaled values (not a draw among infinities).
      this.prepare(logits, history);
      return argmax(vals);
    }
    const w = this.w;
    let z = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(vals[idx[j]] - m);
      w[j] = e;
      z += e;
    }

    // Min-p keeps a prefix of the sorted order, and so does top-p: their intersection is the shorter one.
    // Filter by min-p first (cheap), then sort only the survivors, and only when top-p can cut them further.
    let kept = n;
    if (minP > 0) {
      kept = 0;
      for (let j = 0; j < n; j++) {
        if (w[j] >= minP) { // max numerator is 1, so this is p >= minP * maxP
          idx[kept] = idx[j];
          w[kept] = w[j];
          kept++;
        }
      }
    }
    if (topP < 1) {
      let mass = 0;
      for (let j = 0; j < kept; j++) mass += w[j];
      const target = topP * z; // top-p is measured on the distribution after top-k
      if (mass >= target) kept = topPCut(idx, w, kept, target);
    }

    let total = 0;
    for (let j = 0; j < kept; j++) total += w[j];
    let r = this.rng.next() * total;
    for (let j = 0; j < kept; j++) {
      r -= w[j];
      if (r < 0) return idx[j];
    }
    return idx[kept - 1]; // rounding left r >= 0
  }

  /** vals ← logits (NaN as -Infinity, so it can never be drawn), with the repetition penalty applied. */
  private prepare(logits: Float32Array, history: ArrayLike<number>): void {
    const vals = this.vals;
    for (let i = 0; i < vals.length; i++) {
      const v = logits[i]!;
      vals[i] = v === v ? v : -Infinity;
    }
    if (this.options.repetitionPenalty !== 1) this.penalise(history, this.options.repetitionPenalty);
  }

  private penalise(history: ArrayLike<number>, p: number): void {
    const vals = this.vals;
    const stamp = this.stamp;
    const V = vals.length;
    if (++this.gen === 0xffffffff) {
      stamp.fill(0);
      this.gen = 1;
    }
    const g = this.gen;
    for (let i = 0; i < history.length; i++) {
      const id = history[i];
      if (!(id >= 0 && id < V) || stamp[id] === g) continue;
      stamp[id] = g;
      const v = vals[id];
      vals[id] = v > 0 ? v / p : v * p;
    }
  }
}

/**
 * Writes the ids of the k largest vals into idx[0, k) (unordered) using a size-k min-heap: O(V log k).
 * Ties keep the lower id, as argmax does.
 */
function topKSelect(vals: Float32Array, k: number, idx: Int32Array): number {
  // worse(a, b): a ranks below b (smaller value, or equal value and larger id).
  const worse = (a: number, b: number) => vals[a] < vals[b] || (vals[a] === vals[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= k) return;
      const r = l + 1;
      const c = r < k && worse(idx[r], idx[l]) ? r : l;
      if (!worse(idx[c], idx[i])) return;
      const t = idx[i];
      idx[i] = idx[c];
      idx[c] = t;
      i = c;
    }
  };
  for (let i = 0; i < k; i++) idx[i] = i;
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
  const V = vals.length;
  for (let i = k; i < V; i++) {
    if (vals[i] > vals[idx[0]]) { // strictly greater: an equal later id ranks lower
      idx[0] = i;
      siftDown(0);
    }
  }
  return k;
}

/** Sorts candidates by probability (ties: lower id first) and returns the smallest prefix with mass >= target. */
function topPCut(idx: Int32Array, w: Float64Array, n: number, target: number): number {
  const order = Array.from({ length: n }, (_, j) => j);
  order.sort((a, b) => w[b] - w[a] || idx[a] - idx[b]);
  const ids = order.map((j) => idx[j]);
  const ws = order.map((j) => w[j]);
  let cum = 0;
  let kept = n;
  for (let j = 0; j < n; j++) {
    cum += ws[j];
    if (cum >= target) {
      kept = j + 1;
      break;
    }
  }
  for (let j = 0; j < kept; j++) {
    idx[j] = ids[j];
    w[j] = ws[j];
  }
  return kept;
}
