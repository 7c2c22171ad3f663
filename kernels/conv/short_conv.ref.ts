// CPU reference of the short causal depthwise convolution (spec-deltanet-attention-qwen3next.md §1.4) with its
// rolling per-slot state: y[t, c] = act(Σ_{j<W} w[c, j]·x[t−(W−1)+j, c]), where inputs before a sequence's first
// token come from the slot's history (the last W−1 conv inputs, oldest first; zero for a fresh slot). x may be a
// wider packed row (channel c at column xO + c of a row of xS); channels from `split` on always take SiLU.
import type { Cursor } from '../../src/util/step.ts';

export type ConvAct = 'none' | 'silu';

/** Where the C channels sit in x's rows, and the first channel that always takes SiLU (C: none). */
export interface ConvLayout { xS: number; xO: number; split: number }
const plain = (C: number): ConvLayout => ({ xS: C, xO: 0, split: C });

/** x [N, xS], w [C, W], state [slots, (W−1)·C] (history j at j·C + c, j = W−2 newest), y [N, C]. */
export function shortConvRef(x: Float32Array, w: Float32Array, state: Float32Array, y: Float32Array,
  cursors: Cursor[], C: number, W: number, act: ConvAct, lay: ConvLayout = plain(C)): void {
  const Hn = W - 1;
  for (const cur of cursors) {
    const hist = cur.slot * Hn * C;
    for (let t = cur.start; t < cur.start + cur.len; t++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let j = 0; j < W; j++) {
          const tau = t - (W - 1) + j;
          const v = tau >= cur.start ? x[tau * lay.xS + lay.xO + c]! : state[hist + (Hn - (cur.start - tau)) * C + c]!;
          s += w[c * W + j]! * v;
        }
        const f = Math.fround(s);
        y[t * C + c] = act === 'silu' || c >= lay.split ? f / (1 + Math.exp(-f)) : f;
      }
    }
  }
}

/** state[slot] ← the last W−1 conv inputs of each sequence (its history continued by this step's tokens). */
export function convStoreRef(x: Float32Array, state: Float32Array, cursors: Cursor[], C: number, W: number, lay: ConvLayout = plain(C)): void {
  const Hn = W - 1;
  for (const cur of cursors) {
    if (cur.len === 0) continue;
    const hist = cur.slot * Hn * C;
    const old = state.slice(hist, hist + Hn * C);
    const end = cur.start + cur.len;
    for (let i = 0; i < Hn; i++) {
      const tau = end - Hn + i;
      for (let c = 0; c < C; c++)
        state[hist + i * C + c] = tau >= cur.start ? x[tau * lay.xS + lay.xO + c]! : old[(Hn - (cur.start - tau)) * C + c]!;
    }
  }
}
