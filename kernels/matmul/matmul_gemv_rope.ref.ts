// CPU reference of qkv_rope: the unfused path it replaces — matmul_multi's q|k|v projection (with the RMSNorm that
// feeds it), then rope_kv (biases, q/k norm, RoPE, KV-cache append).
import { ropeKvRef, type RopeKvDims } from '../attention/rope_kv.ref.ts';
import type { Cursor } from '../../src/util/step.ts';
import { matmulMultiRef, type MultiPartRef } from './matmul_gemv_multi.ref.ts';

/** parts [q, k, v] write q, k, v; then q is rotated in place and k, v appended to kc, vc (ropeKvRef). */
export function qkvRopeRef(x: Float32Array, norm: { w: Float32Array; eps: number; h: Float32Array } | null, parts: MultiPartRef[], R: number, IN: number,
  rope: { kc: Float32Array; vc: Float32Array; table: Float32Array; aux: Float32Array | null; cursors: Cursor[]; N: number; d: RopeKvDims }): void {
  matmulMultiRef(x, norm, parts, R, IN, false);
  ropeKvRef(parts[0]!.y, parts[1]!.y, parts[2]!.y, rope.kc, rope.vc, rope.table, rope.aux, rope.cursors, rope.N, rope.d);
}
