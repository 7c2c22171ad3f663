// CPU reference of rwkv7_proj: the unfused matmuls it replaces (matmul.ref.ts) — r, k, v from mix planes 0, 2, 3
// into proj planes 0, 2, 3, and the four LoRA down-projections (rows of the stacked Wl) with their activations
// (tanh, none, sigmoid, none) from mix planes 1, 4, 5, 3 into the column ranges of lora.
import { matmulRef, type Act } from '../matmul/matmul.ref.ts';
import type { LoraRanks } from './wkv7_lora.ref.ts';

/** mix, proj [6, cap, C]; wr, wk, wv [C, C]; wl [R, C]; lora [cap, R]. lora: false leaves the LoRA segments out. */
export function rwkv7ProjRef(mix: Float32Array, wr: Float32Array, wk: Float32Array, wv: Float32Array, wl: Float32Array, proj: Float32Array,
  lora: Float32Array, d: { C: number; cap: number; ranks: LoraRanks; rkv: boolean }): void {
  const { C, cap, ranks } = d;
  const R = ranks.w + ranks.a + ranks.g + ranks.v;
  const plane = (t: Float32Array, p: number) => t.subarray(p * cap * C, (p + 1) * cap * C);
  if (d.rkv) {
    matmulRef(plane(mix, 0), wr, null, plane(proj, 0), cap, C, C, 'none', false);
    matmulRef(plane(mix, 2), wk, null, plane(proj, 2), cap, C, C, 'none', false);
    matmulRef(plane(mix, 3), wv, null, plane(proj, 3), cap, C, C, 'none', false);
  }
  const segs: [number, number, number, Act][] = [[ranks.w, 1, 0, 'tanh'], [ranks.a, 4, ranks.w, 'none'], [ranks.g, 5, ranks.w + ranks.a, 'sigmoid'], [ranks.v, 3, ranks.w + ranks.a + ranks.g, 'none']];
  for (const [r, p, i0, act] of segs) {
    if (r === 0) continue;
    const y = new Float32Array(cap * r);
    matmulRef(plane(mix, p), wl.subarray(i0 * C, (i0 + r) * C), null, y, cap, C, r, act, false);
    for (let t = 0; t < cap; t++) lora.set(y.subarray(t * r, (t + 1) * r), t * R + i0);
  }
}
