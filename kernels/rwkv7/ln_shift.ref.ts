// CPU reference of ln_shift: the unfused ops it replaces, in order — (layer 0) x ← LN_pre(e), h = LN(x),
// token shift with mixing, shift-state store (layer_norm.ref.ts, token_shift.ref.ts).
import type { Cursor } from '../../src/util/step.ts';
import { layerNormRef } from '../norm/layer_norm.ref.ts';
import { shiftStoreRef, tokenShiftRef } from './token_shift.ref.ts';

/**
 * x [R, C] (e when pre); nw [2 | 4, C] = weight, bias (, pre weight, pre bias); state [slots, C]; mix [M, C];
 * out [M, cap, C]; xo [R, C] receives LN_pre(e) when pre. R = capacity rows (the references run on every row).
 */
export function lnShiftRef(x: Float32Array, nw: Float32Array, state: Float32Array, mix: Float32Array, out: Float32Array,
  xo: Float32Array | null, cursors: Cursor[], d: { C: number; M: number; cap: number; eps: number; pre: boolean }): void {
  const { C, cap } = d;
  let inp = x;
  if (d.pre) {
    layerNormRef(x, nw.subarray(2 * C, 3 * C), nw.subarray(3 * C, 4 * C), xo!, cap, C, d.eps);
    inp = xo!;
  }
  const h = new Float32Array(cap * C);
  layerNormRef(inp, nw.subarray(0, C), nw.subarray(C, 2 * C), h, cap, C, d.eps);
  tokenShiftRef(h, state, mix, out, cursors, C, d.M, cap);
  shiftStoreRef(h, state, cursors, C);
}
