// CPU reference of wkv7_lora: the unfused ops it replaces — the four LoRA up-projections with their activations
// (matmul.ref.ts, from the transposed stacked weight) into the proj planes w, a, g and vmix, then wkv7.ref.ts.
import type { Cursor } from '../../src/util/step.ts';
import { matmulRef } from '../matmul/matmul.ref.ts';
import { wkv7Ref } from './wkv7.ref.ts';

export interface LoraRanks { w: number; a: number; g: number; v: number }

/** lora [cap, R]; wu [R, C] (row i: the up-projections' input i); params [8, C]; proj [6, cap, C] (planes 1, 4, 5 overwritten). */
export function wkv7LoraRef(proj: Float32Array, lora: Float32Array, wu: Float32Array, params: Float32Array, vfirst: Float32Array,
  state: Float32Array, y: Float32Array, cursors: Cursor[], d: { C: number; D: number; cap: number; ranks: LoraRanks; fuseNorm: boolean; gnEps: number }): void {
  const { C, cap, ranks } = d;
  const R = ranks.w + ranks.a + ranks.g + ranks.v;
  const first = ranks.v === 0;
  // one up-projection: columns [i0, i0 + r) of lora times rows [i0, i0 + r) of wu, as an nn.Linear [C, r]
  const part = (i0: number, r: number) => {
    const x = new Float32Array(cap * r), w = new Float32Array(C * r);
    for (let t = 0; t < cap; t++) x.set(lora.subarray(t * R + i0, t * R + i0 + r), t * r);
    for (let i = 0; i < r; i++) for (let c = 0; c < C; c++) w[c * r + i] = wu[(i0 + i) * C + c]!;
    return { x, w };
  };
  const plane = (p: number) => proj.subarray(p * cap * C, (p + 1) * cap * C);
  const pw = part(0, ranks.w), pa = part(ranks.w, ranks.a), pg = part(ranks.w + ranks.a, ranks.g);
  matmulRef(pw.x, pw.w, params.subarray(5 * C, 6 * C), plane(1), cap, ranks.w, C, 'rwkv_decay', false);
  matmulRef(pa.x, pa.w, params.subarray(6 * C, 7 * C), plane(4), cap, ranks.a, C, 'sigmoid', false);
  matmulRef(pg.x, pg.w, null, plane(5), cap, ranks.g, C, 'none', false);
  const vmix = new Float32Array(cap * C);
  if (!first) {
    const pv = part(ranks.w + ranks.a + ranks.g, ranks.v);
    matmulRef(pv.x, pv.w, params.subarray(7 * C, 8 * C), vmix, cap, ranks.v, C, 'sigmoid', false);
  }
  wkv7Ref(proj, vfirst, vmix, params, state, y, cursors, { C, D: d.D, cap, first, fuseNorm: d.fuseNorm, gnEps: d.gnEps });
}
