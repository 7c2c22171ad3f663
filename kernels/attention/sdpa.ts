// kv_store and sdpa ops: append this step's keys/values to each slot's cache, then causal GQA attention.
import type { Backend, Tensor } from '../../src/backend/backend.ts';
import { CpuBackend } from '../../src/backend/cpu.ts';
import { GpuBackend } from '../../src/backend/gpu.ts';
import { dispatch, grid } from '../../src/gpu/launch.ts';
import { ShapeError } from '../../src/util/errors.ts';
import { kvStoreRef, sdpaRef } from './sdpa.ref.ts';
import sdpaSrc from './sdpa.wgsl' with { type: 'text' };
import storeSrc from './kv_store.wgsl' with { type: 'text' };

export const BINDINGS = ['step', 'stepmeta', 'q', 'kc', 'vc', 'out', 'dims'] as const;
export const STORE_BINDINGS = ['step', 'stepmeta', 'x', 'cache', 'dims'] as const;

/** cache [slots, ctx·KV·D] ← x [N, KV·D] at each token's position. */
export async function kvStore(o: Backend, x: Tensor, cache: Tensor, ctx: number): Promise<void> {
  if (cache.cols !== ctx * x.cols) throw new ShapeError(`kv_store: cache width ${cache.cols} ≠ ctx ${ctx} × ${x.cols}`);
  if (o instanceof GpuBackend) {
    const s = o.step;
    o.push(await dispatch(o.gpu, { label: 'kv_store', source: storeSrc }, [{ buffer: s.uniform }, { buffer: s.meta }, o.view(x), o.view(cache),
      { buffer: o.gpu.uniform(new Uint32Array([x.cols, ctx])) }], grid(Math.ceil(s.n * x.cols / 64))), { flops: 0, bytes: 8 * s.n * x.cols });
    return;
  }
  const c = o as CpuBackend;
  kvStoreRef(c.data(x), c.data(cache), c.step.cursors, x.cols, ctx);
}

/** FLOPs and bytes of attention for the step's queries: 4·D per (query, key), K and V rows read once per query head group. */
function sdpaCost(cursors: { len: number; pos?: number }[], a: SdpaOp) {
  let pairs = 0;
  for (const c of cursors) for (let t = 0; t < c.len; t++) pairs += (c.pos ?? 0) + t + 1;
  return { flops: 4 * a.D * a.H * pairs, bytes: 4 * 2 * a.D * a.KV * pairs + 8 * a.H * a.D * cursors.reduce((n, c) => n + c.len, 0) };
}

export interface SdpaOp { H: number; KV: number; D: number; ctx: number; window?: number; scale?: number }

/** out [N, H·D] = softmax attention of q over the slot caches k, v. */
export async function sdpa(o: Backend, q: Tensor, k: Tensor, v: Tensor, out: Tensor, a: SdpaOp): Promise<void> {
  if (a.H % a.KV || q.cols !== a.H * a.D || k.cols !== a.ctx * a.KV * a.D) throw new ShapeError(`sdpa: bad shapes (H ${a.H}, KV ${a.KV}, D ${a.D})`);
  const scale = a.scale ?? 1 / Math.sqrt(a.D), window = a.window ?? 0;
  if (o instanceof GpuBackend) {
    const s = o.step, WG = 64, DPT = Math.ceil(a.D / WG);
    const dims = new ArrayBuffer(32);
    new Uint32Array(dims).set([a.H, a.KV, a.D, a.ctx, window]);
    new Float32Array(dims)[5] = scale;
    o.push(await dispatch(o.gpu, { label: 'sdpa', source: sdpaSrc, defines: { WG, DPT } },
      [{ buffer: s.uniform }, { buffer: s.meta }, o.view(q), o.view(k), o.view(v), o.view(out), { buffer: o.gpu.uniform(new Uint32Array(dims)) }],
      grid(s.n * a.H)), sdpaCost(o.step.cursors ?? [], a));
    return;
  }
  const c = o as CpuBackend;
  sdpaRef(c.data(q), c.data(k), c.data(v), c.data(out), c.step.cursors, { H: a.H, KV: a.KV, D: a.D, ctx: a.ctx, window, scale });
}
