// kv_store and sdpa ops: append this step's keys/values to each slot's cache, then causal GQA attention.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { grid, kernel, only, ONLY, op, u32, uniformOf, type Cursor } from '../lib.ts';
import { kvStoreRef, sdpaRef } from './sdpa.ref.ts';
import sdpaSrc from './sdpa.wgsl' with { type: 'text' };
import storeSrc from './kv_store.wgsl' with { type: 'text' };

export const KERNEL = kernel('sdpa', sdpaSrc, ['step', 'stepmeta', 'q', 'kc', 'vc', 'out', 'dims']);
export const STORE_KERNEL = kernel('kv_store', storeSrc, ['step', 'stepmeta', 'x', 'cache', 'dims']);

export interface KvStoreArgs { x: Tensor; cache: Tensor; ctx: number }

export const kvStoreOp = op<KvStoreArgs>({
  name: 'kv_store',
  check(a) { if (a.cache.cols !== a.ctx * a.x.cols) throw new ShapeError(`kv_store: cache width ${a.cache.cols} ≠ ctx ${a.ctx} × ${a.x.cols}`); },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => [{
        kernel: STORE_KERNEL, grid: grid(Math.ceil(c.step.n * a.x.cols / 64)), cost: { flops: 0, bytes: 8 * c.step.n * a.x.cols },
        bind: { x: a.x, cache: a.cache, dims: u32(a.x.cols, a.ctx) },
      }],
    },
  },
  ref: (a, h) => kvStoreRef(h.data(a.x), h.data(a.cache), h.step.cursors, a.x.cols, a.ctx),
});

/** cache [slots, ctx·KV·D] ← x [N, KV·D] at each token's position. */
export function kvStore(o: Backend, x: Tensor, cache: Tensor, ctx: number): Promise<void> {
  return o.run(kvStoreOp, { x, cache, ctx });
}

/** FLOPs and bytes of attention for the step's queries: 4·D per (query, key), K and V rows read once per query head group. */
function sdpaCost(cursors: readonly Cursor[], a: SdpaOp) {
  let pairs = 0;
  for (const c of cursors) for (let t = 0; t < c.len; t++) pairs += (c.pos ?? 0) + t + 1;
  return { flops: 4 * a.D * a.H * pairs, bytes: 4 * 2 * a.D * a.KV * pairs + 8 * a.H * a.D * cursors.reduce((n, c) => n + c.len, 0) };
}

export interface SdpaOp { H: number; KV: number; D: number; ctx: number; window?: number; scale?: number }
export interface SdpaArgs extends SdpaOp { q: Tensor; k: Tensor; v: Tensor; out: Tensor }

export const sdpaOp = op<SdpaArgs>({
  name: 'sdpa',
  check(a) { if (a.H % a.KV || a.q.cols !== a.H * a.D || a.k.cols !== a.ctx * a.KV * a.D) throw new ShapeError(`sdpa: bad shapes (H ${a.H}, KV ${a.KV}, D ${a.D})`); },
  select: only(),
  variants: {
    [ONLY]: {
      launches: (a, c) => {
        const WG = 64, DPT = Math.ceil(a.D / WG);
        const dims = new ArrayBuffer(32);
        new Uint32Array(dims).set([a.H, a.KV, a.D, a.ctx, a.window ?? 0]);
        new Float32Array(dims)[5] = a.scale ?? 1 / Math.sqrt(a.D);
        return [{
          kernel: KERNEL, grid: grid(c.step.n * a.H), defines: { WG, DPT }, cost: sdpaCost(c.step.cursors, a),
          bind: { q: a.q, kc: a.k, vc: a.v, out: a.out, dims: uniformOf(new Uint32Array(dims)) },
        }];
      },
    },
  },
  ref: (a, h) => sdpaRef(h.data(a.q), h.data(a.k), h.data(a.v), h.data(a.out), h.step.cursors,
    { H: a.H, KV: a.KV, D: a.D, ctx: a.ctx, window: a.window ?? 0, scale: a.scale ?? 1 / Math.sqrt(a.D) }),
});

/** out [N, H·D] = softmax attention of q over the slot caches k, v. */
export function sdpa(o: Backend, q: Tensor, k: Tensor, v: Tensor, out: Tensor, a: SdpaOp): Promise<void> {
  return o.run(sdpaOp, { ...a, q, k, v, out });
}
