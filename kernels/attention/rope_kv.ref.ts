// CPU reference of rope_kv: the unfused ops it replaces, one after the other — the q/k/v projection biases, the
// per-head q/k RMSNorm (rms_norm's reference), RoPE on q and k (rope's) and the KV-cache append of k and v (kv_store's).
import { rmsNormRef } from '../norm/rms_norm.ref.ts';
import type { Cursor } from '../../src/util/step.ts';
import { ropeRef } from './rope.ref.ts';
import { kvStoreRef, type KvDtype } from './sdpa.ref.ts';

export interface RopeKvDims { H: number; KV: number; D: number; R: number; P: number; ctx: number; eps: number; plusOne: boolean; norm: boolean; bias: boolean; kv: KvDtype }

/**
 * The aux vector rope_kv reads: [qn D | kn D] when there is a q/k norm, then [qb H·D | kb KV·D | vb KV·D] when there
 * are biases (a missing one is zeros); null when neither.
 */
export function ropeKvAux(d: { H: number; KV: number; D: number }, qn: Float32Array | null, kn: Float32Array | null,
  qb: Float32Array | null, kb: Float32Array | null, vb: Float32Array | null): Float32Array | null {
  const norm = qn !== null || kn !== null, bias = qb !== null || kb !== null || vb !== null;
  if (!norm && !bias) return null;
  const { H, KV, D } = d, nb = norm ? 2 * D : 0;
  const aux = new Float32Array(nb + (bias ? H * D + 2 * KV * D : 0));
  if (norm) { aux.set(qn ?? new Float32Array(D).fill(1), 0); aux.set(kn ?? new Float32Array(D).fill(1), D); }
  if (bias) {
    if (qb) aux.set(qb, nb);
    if (kb) aux.set(kb, nb + H * D);
    if (vb) aux.set(vb, nb + H * D + KV * D);
  }
  return aux;
}

/** q [N, H·D] in place; k, v [N, KV·D] left alone; kc, vc the slot caches; aux as ropeKvAux lays it out. */
export function ropeKvRef(q: Float32Array, k: Float32Array, v: Float32Array, kc: Float32Array, vc: Float32Array, table: Float32Array,
  aux: Float32Array | null, cursors: Cursor[], N: number, d: RopeKvDims): void {
  const { H, KV, D } = d, KVD = KV * D;
  const kk = k.slice(0, N * KVD), vv = v.slice(0, N * KVD);
  if (d.bias) {
    const b = d.norm ? 2 * D : 0;
    for (let t = 0; t < N; t++) {
      for (let i = 0; i < H * D; i++) q[t * H * D + i]! += aux![b + i]!;
      for (let i = 0; i < KVD; i++) { kk[t * KVD + i]! += aux![b + H * D + i]!; vv[t * KVD + i]! += aux![b + H * D + KVD + i]!; }
    }
  }
  if (d.norm) {
    rmsNormRef(q, aux!.subarray(0, D), q, N * H, D, { eps: d.eps, plusOne: d.plusOne });
    rmsNormRef(kk, aux!.subarray(D, 2 * D), kk, N * KV, D, { eps: d.eps, plusOne: d.plusOne });
  }
  ropeRef(q, table, cursors, H, D, d.R, d.P);
  ropeRef(kk, table, cursors, KV, D, d.R, d.P);
  kvStoreRef(kk, kc, cursors, KVD, d.ctx, d.kv);
  kvStoreRef(vv, vc, cursors, KVD, d.ctx, d.kv);
}
