// CPU reference of the KV-cache write and of causal softmax attention with GQA over a slot's cache
// (spec-deltanet-attention-qwen3next.md §1.7): query at absolute position p sees keys 0..p (and only the last
// W when windowed); scores q·k·scale, fp32 softmax, output Σ p·v, heads merged head-major.
import type { Cursor } from '../../src/util/step.ts';

export interface SdpaDims { H: number; KV: number; D: number; ctx: number; window: number; scale: number }

/** cache[slot, pos, :] = x[t, :] for each token (x [N, KV·D], cache [slots, ctx, KV·D]). */
export function kvStoreRef(x: Float32Array, cache: Float32Array, cursors: Cursor[], KVD: number, ctx: number): void {
  for (const cur of cursors) for (let t = cur.start; t < cur.start + cur.len; t++) {
    const p = (cur.pos ?? 0) + t - cur.start;
    cache.set(x.subarray(t * KVD, (t + 1) * KVD), (cur.slot * ctx + p) * KVD);
  }
}

/** out [N, H·D] = attention of q [N, H·D] over the caches k, v [slots, ctx, KV·D] (already holding this step's keys). */
export function sdpaRef(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, cursors: Cursor[], d: SdpaDims): void {
  const { H, KV, D, ctx } = d, g = H / KV, KVD = KV * D;
  const s = new Float64Array(ctx);
  for (const cur of cursors) for (let t = cur.start; t < cur.start + cur.len; t++) {
    const p = (cur.pos ?? 0) + t - cur.start;
    const j0 = d.window > 0 ? Math.max(0, p - d.window + 1) : 0;
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / g), qo = t * H * D + h * D;
      let m = -Infinity;
      for (let j = j0; j <= p; j++) {
        const ko = (cur.slot * ctx + j) * KVD + kh * D;
        let dot = 0;
        for (let i = 0; i < D; i++) dot += q[qo + i]! * k[ko + i]!;
        s[j] = dot * d.scale;
        m = Math.max(m, s[j]!);
      }
      let sum = 0;
      for (let j = j0; j <= p; j++) { s[j] = Math.exp(s[j]! - m); sum += s[j]!; }
      for (let i = 0; i < D; i++) {
        let acc = 0;
        for (let j = j0; j <= p; j++) acc += s[j]! * v[(cur.slot * ctx + j) * KVD + kh * D + i]!;
        out[qo + i] = acc / sum;
      }
    }
  }
}
