// CPU reference of RWKV token shift with mixing (spec §1.3 steps 2–3, §1.4): for each token t of a
// sequence, prev = h[t−1], or the sequence's shift state for its first token; out[m, t] = h + (prev − h)·mix[m].
import type { Cursor } from '../../src/util/step.ts';

/** h [N, C], state [slots, C], mix [M, C] → out [M, cap, C] (plane stride cap·C). */
export function tokenShiftRef(h: Float32Array, state: Float32Array, mix: Float32Array, out: Float32Array,
  cursors: Cursor[], C: number, M: number, cap: number): void {
  for (const cur of cursors) {
    for (let t = cur.start; t < cur.start + cur.len; t++) {
      for (let c = 0; c < C; c++) {
        const x = h[t * C + c]!;
        const prev = t === cur.start ? state[cur.slot * C + c]! : h[(t - 1) * C + c]!;
        const d = prev - x;
        for (let m = 0; m < M; m++) out[m * cap * C + t * C + c] = Math.fround(x + d * mix[m * C + c]!);
      }
    }
  }
}

/** state[slot] = h[last token of the sequence], for every sequence with tokens in this step. */
export function shiftStoreRef(h: Float32Array, state: Float32Array, cursors: Cursor[], C: number): void {
  for (const cur of cursors) {
    if (cur.len === 0) continue;
    const t = cur.start + cur.len - 1;
    state.set(h.subarray(t * C, t * C + C), cur.slot * C);
  }
}
