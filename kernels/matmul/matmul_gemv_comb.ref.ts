// CPU reference of attn_out: the unfused path it replaces — sdpa's reference (the attention output, written to out),
// then matmul's (y (+)= out·wᵀ + bias over R rows).
import { sdpaRef, type SdpaDims } from '../attention/sdpa.ref.ts';
import type { Cursor } from '../../src/backend/backend.ts';
import { matmulRef } from './matmul.ref.ts';

export function attnOutRef(q: Float32Array, kc: Float32Array, vc: Float32Array, out: Float32Array, cursors: Cursor[], d: SdpaDims,
  w: Float32Array, bias: Float32Array | null, y: Float32Array, R: number, OUT: number, accumulate: boolean): void {
  sdpaRef(q, kc, vc, out, cursors, d);
  matmulRef(out, w, bias, y, R, d.H * d.D, OUT, 'none', accumulate);
}
