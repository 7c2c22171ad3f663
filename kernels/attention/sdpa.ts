// kv_store and sdpa ops: append this step's keys/values to each slot's cache, then causal GQA attention.
// The cache is stored as f32, f16 or bf16 (`KvDtype`, FLA_KV_CACHE): 16-bit pairs packed in u32 words halve the
// bytes a long-context decode step reads. sdpa has two variants: `single` (one workgroup per query token and head,
// online softmax over the whole context: prefill) and `split` (split-K / flash-decoding: each query's context cut
// into S splits on S workgroups, then a combine pass; chosen for decode-shaped steps over a long cache).
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { knob } from '../../src/util/knobs.ts';
import { grid, kernel, only, ONLY, op, scratch, u32, uniformOf, type Ctx, type Cursor, type Defines, type Launch } from '../lib.ts';
import { kvStoreRef, sdpaRef, type KvDtype } from './sdpa.ref.ts';
import sdpaSrc from './sdpa.wgsl' with { type: 'text' };
import splitSrc from './sdpa_split.wgsl' with { type: 'text' };
import combineSrc from './sdpa_combine.wgsl' with { type: 'text' };
import storeSrc from './kv_store.wgsl' with { type: 'text' };

export type { KvDtype };

export const KERNEL = kernel('sdpa', sdpaSrc, ['step', 'stepmeta', 'q', 'kc', 'vc', 'out', 'dims']);
export const SPLIT_KERNEL = kernel('sdpa_split', splitSrc, ['step', 'stepmeta', 'q', 'kc', 'vc', 'part', 'dims']);
export const COMBINE_KERNEL = kernel('sdpa_combine', combineSrc, ['step', 'part', 'out', 'dims']);
export const STORE_KERNEL = kernel('kv_store', storeSrc, ['step', 'stepmeta', 'x', 'cache', 'dims']);

/**
 * The KV-cache storage of this process: FLA_KV_CACHE, else f32 (the 16-bit caches move the fixtures' logits by
 * more than the golden tests' 1e-4: see test/regular/kernels/attention_kv16.test.ts for the measured errors).
 */
export function kvCacheDtype(): KvDtype { return (knob('FLA_KV_CACHE') as KvDtype | undefined) ?? 'f32'; }

/** Per-slot state columns (f32 words) of a cache of ctx rows of KVD values stored as `dt`. */
export function kvCols(ctx: number, KVD: number, dt: KvDtype): number {
  if (dt !== 'f32' && KVD % 2) throw new ShapeError(`kv cache: ${dt} storage needs an even KV·D (got ${KVD})`);
  return dt === 'f32' ? ctx * KVD : ctx * KVD / 2;
}

/** Context rows of a cache tensor of KVD values per row stored as `dt` (the inverse of kvCols). */
export function kvCtx(cache: Tensor, KVD: number, dt: KvDtype): number { return dt === 'f32' ? cache.cols / KVD : 2 * cache.cols / KVD; }

const KVDT = { f32: 1, bf16: 2, f16: 3 } as const;
function kvDefines(dt: KvDtype): Defines { return { KVDT: KVDT[dt], KV16: dt !== 'f32', KV_F16: dt === 'f16' }; }
const bytesPer = (dt: KvDtype) => (dt === 'f32' ? 4 : 2);

export interface KvStoreArgs { x: Tensor; cache: Tensor; ctx: number; dtype?: KvDtype }

export const kvStoreOp = op<KvStoreArgs>({
  name: 'kv_store',
  check(a) {
    const want = kvCols(a.ctx, a.x.cols, a.dtype ?? 'f32');
    if (a.cache.cols !== want) throw new ShapeError(`kv_store: cache width ${a.cache.cols} ≠ ${want} (ctx ${a.ctx} × ${a.x.cols} as ${a.dtype ?? 'f32'})`);
  },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const dt = a.dtype ?? 'f32', words = dt === 'f32' ? a.x.cols : a.x.cols / 2;
        return [{
          kernel: STORE_KERNEL, grid: grid(Math.ceil(c.step.n * words / 64)), defines: kvDefines(dt),
          cost: { flops: 0, bytes: (4 + bytesPer(dt)) * c.step.n * a.x.cols },
          bind: { x: a.x, cache: a.cache, dims: u32(a.x.cols, a.ctx) },
        }];
      },
    },
  },
  ref: (a, h) => kvStoreRef(h.data(a.x), h.data(a.cache), h.step.cursors, a.x.cols, a.ctx, a.dtype ?? 'f32'),
});

/** cache [slots, ctx·KV·D] ← x [N, KV·D] at each token's position, stored as `dtype` (default: kvCacheDtype()). */
export function kvStore(o: Backend, x: Tensor, cache: Tensor, ctx: number, dtype: KvDtype = kvCacheDtype()): Promise<void> {
  return o.run(kvStoreOp, { x, cache, ctx, dtype });
}

/** FLOPs and bytes of attention for the step's queries: 4·D per (query, key), K and V rows read once per query head group. */
function sdpaCost(cursors: readonly Cursor[], a: SdpaOp) {
  let pairs = 0;
  for (const c of cursors) for (let t = 0; t < c.len; t++) {
    const p = (c.pos ?? 0) + t;
    pairs += a.window ? Math.min(a.window, p + 1) : p + 1;
  }
  return { flops: 4 * a.D * a.H * pairs, bytes: bytesPer(a.kv ?? 'f32') * 2 * a.D * a.KV * pairs + 8 * a.H * a.D * cursors.reduce((n, c) => n + c.len, 0) };
}

export interface SdpaOp { H: number; KV: number; D: number; ctx: number; window?: number; scale?: number; kv?: KvDtype }
export interface SdpaArgs extends SdpaOp { q: Tensor; k: Tensor; v: Tensor; out: Tensor }

function dimsOf(a: SdpaArgs, S: number) {
  const dims = new ArrayBuffer(32);
  new Uint32Array(dims).set([a.H, a.KV, a.D, a.ctx, a.window ?? 0, 0, S, SPLIT_KPT]);
  new Float32Array(dims)[5] = a.scale ?? 1 / Math.sqrt(a.D);
  return uniformOf(new Uint32Array(dims));
}

/** Decode-shaped steps (every sequence ≤ SPLIT_MAX_LEN tokens) over a cache longer than SPLIT_MIN_CTX take `split`. */
export const SPLIT_MAX_LEN = 16;
export const SPLIT_MIN_CTX = 256;
const SPLIT_WG = 64, SPLIT_KPT = 4;   // 64 threads, 256-key blocks
const MAX_SPLITS = 128;

/**
 * Splits per query: enough workgroups to fill the card (≈ 2048 of 64 threads on a discrete GPU, 64 on a CPU
 * adapter), no more than the cache has 64-key blocks. Depends on (n, ctx) only, so replayed decode steps agree;
 * splits past a short context's end are empty and cost one early return.
 */
export function splitsOf(a: SdpaArgs, c: Ctx): number {
  const target = c.adapter.type === 'cpu' ? 64 : 2048;
  const budget = Math.floor(c.adapter.maxBinding / (4 * 128 * c.step.n * a.H * (a.D + 2)));   // the flat partial buffer at a 8192-row capacity
  return Math.max(1, Math.min(Math.ceil(target / (c.step.n * a.H)), Math.ceil(a.ctx / (SPLIT_WG * SPLIT_KPT)), MAX_SPLITS, budget));
}

export const sdpaOp = op<SdpaArgs>({
  name: 'sdpa',
  check(a) {
    if (a.H % a.KV || a.q.cols !== a.H * a.D || a.k.cols !== kvCols(a.ctx, a.KV * a.D, a.kv ?? 'f32') || a.v.cols !== a.k.cols)
      throw new ShapeError(`sdpa: bad shapes (H ${a.H}, KV ${a.KV}, D ${a.D}, ctx ${a.ctx}, cache ${a.kv ?? 'f32'} of ${a.k.cols} columns)`);
  },
  select: (c, a) => (c.step.maxLen <= SPLIT_MAX_LEN && a.ctx > SPLIT_MIN_CTX ? 'split' : 'single'),
  variants: {
    single: {
      launches: (a, c) => {
        const WG = 64, DPT = Math.ceil(a.D / WG);
        return [{
          kernel: KERNEL, grid: grid(c.step.n * a.H), defines: { WG, DPT, ...kvDefines(a.kv ?? 'f32') }, cost: sdpaCost(c.step.cursors, a),
          bind: { q: a.q, kc: a.k, vc: a.v, out: a.out, dims: dimsOf(a, 0) },
        }];
      },
    },
    split: {
      supports: a => a.D % 2 === 0,
      // The partials are used as one flat array of n·H·S·(D+2) floats: the scratch is at least 64 rows deep on the
      // GPU backend (its row capacity is a multiple of 64), so ceil(need / 64) columns hold them.
      scratch: (a, c) => ({ part: { cols: Math.ceil(c.step.n * a.H * splitsOf(a, c) * (a.D + 2) / 64) } }),
      launches: (a, c): Launch[] => {
        const WG = SPLIT_WG, NPAIR = a.D / 2, S = splitsOf(a, c), dims = dimsOf(a, S);
        const cost = sdpaCost(c.step.cursors, a), part = 4 * c.step.n * a.H * S * (a.D + 2);
        return [{
          kernel: SPLIT_KERNEL, grid: grid(c.step.n * S * a.H), cost: { flops: cost.flops, bytes: cost.bytes + part },
          defines: { WG, KPT: SPLIT_KPT, NPAIR, R: Math.max(1, Math.floor(WG / NPAIR)), PPT: Math.ceil(NPAIR / WG), ...kvDefines(a.kv ?? 'f32') },
          bind: { q: a.q, kc: a.k, vc: a.v, part: scratch('part'), dims },
        }, {
          kernel: COMBINE_KERNEL, grid: grid(c.step.n * a.H), defines: { WG: 64 }, cost: { flops: 3 * part / 4, bytes: part + 4 * c.step.n * a.H * a.D },
          bind: { part: scratch('part'), out: a.out, dims },
        }];
      },
    },
  },
  ref: (a, h) => sdpaRef(h.data(a.q), h.data(a.k), h.data(a.v), h.data(a.out), h.step.cursors,
    { H: a.H, KV: a.KV, D: a.D, ctx: a.ctx, window: a.window ?? 0, scale: a.scale ?? 1 / Math.sqrt(a.D), kv: a.kv ?? 'f32' }),
});

/** out [N, H·D] = softmax attention of q over the slot caches k, v (stored as a.kv, default kvCacheDtype()). */
export function sdpa(o: Backend, q: Tensor, k: Tensor, v: Tensor, out: Tensor, a: SdpaOp): Promise<void> {
  return o.run(sdpaOp, { kv: kvCacheDtype(), ...a, q, k, v, out });
}
