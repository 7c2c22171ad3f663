// CPU reference of sample (kernels/sample/sample.wgsl): per row of logits [K, V], the token Sampler
// (src/runtime/sample.ts) would keep as candidates, and the one Gumbel-max draw among them the device makes.
// Also the per-row parameter layout (PARAM_*) and its encoder, which the op and the engine share.
//
// Semantics, in the host Sampler's order:
//   v = logits (NaN → −∞); repetition penalty on each distinct history id: v > 0 ? v · f32(1/p) : v · p (f32);
//   T = 0 (or 1/T beyond f32): argmax of v (lowest id on ties), as the host. Else y = v · f32(1/T) (f32);
//   m = max y not finite (all −∞, or y overflowed): argmax of v, as the host.
//   order = y descending, id ascending. top-k keeps the first k (k = 0 or ≥ V: all). w = exp(y − m).
//   min-p keeps w ≥ minP. top-p: target = p · Σ_{top-k} w; when the min-p survivors' mass reaches it, the shortest
//   prefix of them (in order) whose mass reaches it. Candidates with y = −∞ are never drawn.
//   The draw: argmax over candidates of y_i − log(E_i) (Gumbel-max, so P(i) ∝ exp(y_i) over the candidates), E_i
//   = expo(hash(seed, stream, step, i)), lowest id on ties. The host Sampler draws with its own RNG (xoshiro128**):
//   same candidates and probabilities, different tokens for the same seed.
// Where the two differ, only at rounding boundaries: the device sums w in f32 (the host in f64), computes exp and
// log in f32 (WGSL's accuracy), multiplies by f32(1/p) and f32(1/T) where the host divides / multiplies in f64.

/** f32 columns of each row of `params`: 16 fixed, then the history ids (distinct; count in PARAM_NHIST). */
export const PARAM_FIXED = 16;
export const PARAM_INV_T = 0, PARAM_TOP_K = 1, PARAM_TOP_P = 2, PARAM_MIN_P = 3, PARAM_PENALTY = 4;
export const PARAM_SEED = 5;      // 4 × 16 bits, low first
export const PARAM_STEP = 9;      // 2 × 16 bits, low first
export const PARAM_STREAM = 11, PARAM_NHIST = 12, PARAM_INV_PENALTY = 13;

/** One row's sampling settings (validated SamplingOptions fields) and where the draw sits in the RNG stream. */
export interface SampleRow {
  temperature: number; topK: number; topP: number; minP: number; repetitionPenalty: number;
  /** integer in [0, 2^53) */
  seed: number;
  /** the draw's index in its sequence (wraps at 2^32) */
  step: number;
  /** a further key (e.g. one of several choices of one request), < 2^24; default 0 */
  stream?: number;
  /** distinct ids the penalty applies to (read only when repetitionPenalty ≠ 1) */
  history?: ArrayLike<number>;
}

/** Columns a params row needs for `nHist` distinct history ids: 16, or 16 + a power of two ≥ 16 (few shapes to record). */
export function paramCols(nHist: number): number {
  if (nHist <= 0) return PARAM_FIXED;
  let c = 16;
  while (c < nHist) c *= 2;
  return PARAM_FIXED + c;
}

/** Writes row `s` into dst[off, off + P) (P = paramCols of its history or more). */
export function encodeRow(dst: Float32Array, off: number, P: number, s: SampleRow): void {
  const inv = s.temperature === 0 ? 0 : Math.fround(1 / s.temperature);
  const hist = s.repetitionPenalty !== 1 ? (s.history ?? []) : [];
  if (PARAM_FIXED + hist.length > P) throw new RangeError(`sample params: ${hist.length} history ids need ${paramCols(hist.length)} columns, have ${P}`);
  const row = dst.subarray(off, off + P);
  row.fill(0);
  row[PARAM_INV_T] = Number.isFinite(inv) ? inv : 0;
  row[PARAM_TOP_K] = Math.min(s.topK, 0xffffff);
  row[PARAM_TOP_P] = s.topP;
  row[PARAM_MIN_P] = s.minP;
  row[PARAM_PENALTY] = s.repetitionPenalty;
  row[PARAM_INV_PENALTY] = 1 / s.repetitionPenalty;
  let seed = s.seed;
  for (let j = 0; j < 4; j++) { row[PARAM_SEED + j] = seed % 65536; seed = Math.floor(seed / 65536); }
  const step = s.step >>> 0;
  row[PARAM_STEP] = step & 0xffff;
  row[PARAM_STEP + 1] = step >>> 16;
  row[PARAM_STREAM] = s.stream ?? 0;
  row[PARAM_NHIST] = hist.length;
  for (let j = 0; j < hist.length; j++) row[PARAM_FIXED + j] = hist[j]!;
}

/** lowbias32, the hash of the draw (as sample.wgsl's mix). */
export function mix(x0: number): number {
  let x = x0 >>> 0;
  x ^= x >>> 16; x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15; x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The row's RNG key from its params row. */
export function rowKey(p: Float32Array): number {
  const s0 = (p[PARAM_SEED]! | (p[PARAM_SEED + 1]! << 16)) >>> 0;
  const s1 = (p[PARAM_SEED + 2]! | (p[PARAM_SEED + 3]! << 16)) >>> 0;
  const step = (p[PARAM_STEP]! | (p[PARAM_STEP + 1]! << 16)) >>> 0;
  return mix(mix(mix(mix((s0 ^ 0x9e3779b9) >>> 0) ^ s1) ^ p[PARAM_STREAM]!) ^ step);
}

/** The uniform bits of token i's draw. */
export function tokenBits(key: number, i: number): number { return mix(key ^ mix(i ^ 0x632be5ab)); }

/** E ~ Exp(1) from the top 24 bits of h: −log(u) for u < ½, else 2·atanh((1 − u)/(1 + u)) by its series. */
export function expo(h: number): number {
  const b = h >>> 8;
  if (b < 0x800000) return -Math.log((b + 0.5) / 16777216);
  const q = (0x1000000 - b - 0.5) / 16777216;
  const s = q / (2 - q), s2 = s * s;
  let t = 1 / 17;
  for (let j = 15; j >= 1; j -= 2) t = t * s2 + 1 / j;
  return 2 * s * t;
}

const f = Math.fround;

/** Order-preserving u32 keys of f32 values (−0 as +0; NaN never reaches them). */
function keys(y: Float32Array): Uint32Array {
  const b = new Uint32Array(y.buffer.slice(y.byteOffset, y.byteOffset + 4 * y.length));
  for (let i = 0; i < b.length; i++) {
    const x = (b[i]! & 0x7fffffff) === 0 ? 0 : b[i]!;
    b[i] = x & 0x80000000 ? ~x : x | 0x80000000;
  }
  return b;
}

export interface RowResult {
  id: number; nonFinite: number;
  /** candidate ids (in the order, y descending, id ascending, when a top-p cut was made); null when the row was greedy */
  cand: Int32Array | null;
  /** each candidate's y − log(E) */
  score?: Float64Array;
}

/** One row: logits[off, off + V), params row p. */
export function sampleRow(logits: Float32Array, off: number, V: number, p: Float32Array): RowResult {
  const v = new Float32Array(V);
  let bad = 0;
  for (let i = 0; i < V; i++) {
    const x = logits[off + i]!;
    if (!Number.isFinite(x)) bad = 1;
    v[i] = x === x ? x : -Infinity;
  }
  const pen = p[PARAM_PENALTY]!, ipen = p[PARAM_INV_PENALTY]!;
  if (pen !== 1) {
    const nh = Math.min(p[PARAM_NHIST]!, p.length - PARAM_FIXED);
    for (let j = 0; j < nh; j++) {
      const id = p[PARAM_FIXED + j]!, x = logits[off + id]!;
      if (id < V && x === x) v[id] = x > 0 ? f(x * ipen) : f(x * pen);
    }
  }
  let am = 0;
  for (let i = 1; i < V; i++) if (v[i]! > v[am]!) am = i;
  const inv = p[PARAM_INV_T]!;
  const y = new Float32Array(V);
  let m = -Infinity;
  for (let i = 0; i < V; i++) { y[i] = v[i]! * inv; if (y[i]! > m) m = y[i]!; }
  if (inv === 0 || !Number.isFinite(m)) return { id: am, nonFinite: bad, cand: null };

  const ky = keys(y);
  const cmp = (a: number, b: number) => ky[b]! - ky[a]! || a - b;   // the order: y descending, id ascending
  const topK = p[PARAM_TOP_K]!, topP = p[PARAM_TOP_P]!, minP = p[PARAM_MIN_P]!;
  // top-k: the k first in the order (the key of the k-th from a sorted copy of the keys, its ties by id)
  let members: number[] = [];
  if (topK > 0 && topK < V) {
    const tk = Uint32Array.from(ky).sort()[V - topK]!;
    let ties = topK;
    for (let i = 0; i < V; i++) if (ky[i]! > tk) ties--;
    for (let i = 0; i < V; i++) if (ky[i]! > tk || (ky[i] === tk && ties-- > 0)) members.push(i);
  } else members = Array.from({ length: V }, (_, i) => i);
  const wOf = (i: number) => Math.exp(y[i]! - m);
  let z = 0;
  for (const i of members) z += wOf(i);
  // min-p and top-p keep prefixes of the order; sort only what a top-p cut can reach
  let list = minP === 0 ? members : members.filter(i => wOf(i) >= minP);
  let mass = 0;
  for (const i of list) mass += wOf(i);
  if (topP < 1 && mass >= topP * z) {
    const goal = topP * z;
    // the cut lies among the tokens of w ≥ b once those alone hold the goal (the rest come after them in the order)
    for (let b = 1e-4; ; b = b > 1e-300 ? b / 100 : 0) {
      const sub = list.filter(i => wOf(i) >= b);
      let held = 0;
      for (const i of sub) held += wOf(i);
      if (held >= goal || b === 0) { list = sub; break; }
    }
    list.sort(cmp);
    let cum = 0, j = 0;
    while (j < list.length) { cum += wOf(list[j++]!); if (cum >= goal) break; }
    list = list.slice(0, j);
  }
  const n = list.length;
  const cand = Int32Array.from(list);
  const k = rowKey(p);
  const score = new Float64Array(n);
  let best = -1;
  for (let j = 0; j < n; j++) {
    const i = cand[j]!;
    score[j] = y[i]! === -Infinity ? -Infinity : y[i]! - Math.log(expo(tokenBits(k, i)));
    if (score[j]! === -Infinity) continue;
    if (best < 0 || score[j]! > score[best]! || (score[j] === score[best] && i < cand[best]!)) best = j;
  }
  return { id: best < 0 ? am : cand[best]!, nonFinite: bad, cand, score };
}

export interface SampleResult { ids: Int32Array; nonFinite: Uint8Array }

/** Every row of logits [K, V] with params [K, P]. */
export function sampleRef(logits: Float32Array, params: Float32Array, K: number, V: number, P: number): SampleResult {
  const ids = new Int32Array(K), nonFinite = new Uint8Array(K);
  for (let r = 0; r < K; r++) {
    const res = sampleRow(logits, r * V, V, params.subarray(r * P, (r + 1) * P));
    ids[r] = res.id;
    nonFinite[r] = res.nonFinite;
  }
  return { ids, nonFinite };
}
