// CPU reference of the KV-cache write and of causal softmax attention with GQA over a slot's cache
// (spec-deltanet-attention-qwen3next.md §1.7): query at absolute position p sees keys 0..p (and only the last
// W when windowed); scores q·k·scale, fp32 softmax, output Σ p·v, heads merged head-major.
// A 16-bit cache (f16, or bf16 rounded to nearest even) keeps element e in 16-bit half e of the state's words
// (little-endian: element 2w is the low half of word w), as kv_store.wgsl packs it.
import type { Cursor } from '../../src/util/step.ts';

export type KvDtype = 'f32' | 'f16' | 'bf16';

export interface SdpaDims { H: number; KV: number; D: number; ctx: number; window: number; scale: number; kv?: KvDtype }

const f32b = new Float32Array(1), u32b = new Uint32Array(f32b.buffer);

export function bf16Bits(v: number): number {
  f32b[0] = v;
  const x = u32b[0]!;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A cache's values as f32 (the state array itself when stored as f32, else decoded from its 16-bit halves). */
export function kvValues(cache: Float32Array, dt: KvDtype): Float32Array {
  if (dt === 'f32') return cache;
  if (dt === 'f16') return Float32Array.from(new Float16Array(cache.buffer, cache.byteOffset, cache.length * 2));
  const u = new Uint16Array(cache.buffer, cache.byteOffset, cache.length * 2), out = new Float32Array(u.length), o = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) o[i] = u[i]! << 16;
  return out;
}

/** cache[slot, pos, :] = x[t, :] for each token (x [N, KV·D], cache [slots, ctx, KV·D] stored as dt). */
export function kvStoreRef(x: Float32Array, cache: Float32Array, cursors: Cursor[], KVD: number, ctx: number, dt: KvDtype = 'f32'): void {
  const h = dt === 'f16' ? new Float16Array(cache.buffer, cache.byteOffset, cache.length * 2) : null;
  const u = dt === 'bf16' ? new Uint16Array(cache.buffer, cache.byteOffset, cache.length * 2) : null;
  for (const cur of cursors) for (let t = cur.start; t < cur.start + cur.len; t++) {
    const p = (cur.pos ?? 0) + t - cur.start, row = x.subarray(t * KVD, (t + 1) * KVD), o = (cur.slot * ctx + p) * KVD;
    if (dt === 'f32') cache.set(row, o);
    else if (h) for (let i = 0; i < KVD; i++) h[o + i] = Math.abs(row[i]!) < 6.103515625e-5 ? 0 : row[i]!;   // f16 subnormals flush, as GPUs may
    else for (let i = 0; i < KVD; i++) u![o + i] = bf16Bits(row[i]!);
  }
}

/** out [N, H·D] = attention of q [N, H·D] over the caches k, v [slots, ctx, KV·D] (already holding this step's keys). */
export function sdpaRef(q: Float32Array, kc: Float32Array, vc: Float32Array, out: Float32Array, cursors: Cursor[], d: SdpaDims): void {
  const { H, KV, D, ctx } = d, g = H / KV, KVD = KV * D;
  const k = kvValues(kc, d.kv ?? 'f32'), v = kvValues(vc, d.kv ?? 'f32');
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
