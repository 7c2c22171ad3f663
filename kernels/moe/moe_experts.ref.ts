// CPU reference of the routed experts (spec-deltanet-attention-qwen3next.md §8.6): for each token t and each of its
// K chosen experts e_j = sel[t, j] with weight w_j = sel[t, K + j]:
//   a = silu(h[t]·W_gate[e]ᵀ) ⊙ (h[t]·W_up[e]ᵀ),   y[t] += Σ_j w_j · a·W_down[e]ᵀ
// gu [E, 2I, C] holds per expert the I gate rows then the I up rows; down [E, C, I]. Only the chosen experts run.
// With a shared expert (gate|up [2Is, C], down [C, Is]) and its gate s = sel[t, 2K]: y[t] += s · SwiGLU_shared(h[t]).

export interface SharedRef { gu: Float32Array; down: Float32Array; I: number }

/** sel rows are SW wide (2K, or 2K + 1 with the shared gate last). */
export function moeExpertsRef(h: Float32Array, sel: Float32Array, gu: Float32Array, down: Float32Array, y: Float32Array,
  N: number, K: number, C: number, I: number, SW = 2 * K, shared: SharedRef | null = null): void {
  if (shared) {
    // the shared expert as a one-expert selection of weight s, added after the routed sum of each token
    const one = new Float32Array(2);
    for (let t = 0; t < N; t++) {
      moeExpertsRef(h.subarray(t * C, (t + 1) * C), sel.subarray(t * SW, (t + 1) * SW), gu, down, y.subarray(t * C, (t + 1) * C), 1, K, C, I, SW);
      one[1] = sel[t * SW + 2 * K]!;
      moeExpertsRef(h.subarray(t * C, (t + 1) * C), one, shared.gu, shared.down, y.subarray(t * C, (t + 1) * C), 1, 1, C, shared.I);
    }
    return;
  }
  const a = new Float32Array(I), yk = new Float64Array(C);
  for (let t = 0; t < N; t++) {
    const x = h.subarray(t * C, (t + 1) * C);
    yk.fill(0);
    for (let j = 0; j < K; j++) {
      const e = sel[t * SW + j]!, w = sel[t * SW + K + j]!;
      const g0 = e * 2 * I * C;
      for (let i = 0; i < I; i++) {
        let g = 0, u = 0;
        for (let c = 0; c < C; c++) { g += x[c]! * gu[g0 + i * C + c]!; u += x[c]! * gu[g0 + (I + i) * C + c]!; }
        g = Math.fround(g);
        a[i] = (g / (1 + Math.exp(-g))) * Math.fround(u);
      }
      const d0 = e * C * I;
      for (let o = 0; o < C; o++) {
        let s = 0;
        for (let i = 0; i < I; i++) s += a[i]! * down[d0 + o * I + i]!;
        yk[o]! += w * Math.fround(s);
      }
    }
    for (let o = 0; o < C; o++) y[t * C + o]! += yk[o]!;
  }
}

/** The dense formula the sparse path replaces (tests): every expert over every token, weight 0 where not chosen. */
export function moeDenseRef(h: Float32Array, wDense: Float32Array, gu: Float32Array, down: Float32Array, y: Float32Array,
  N: number, E: number, C: number, I: number): void {
  const sel = new Float32Array(2 * E);
  for (let t = 0; t < N; t++) {
    for (let e = 0; e < E; e++) { sel[e] = e; sel[E + e] = wDense[t * E + e]!; }
    moeExpertsRef(h.subarray(t * C, (t + 1) * C), sel, gu, down, y.subarray(t * C, (t + 1) * C), 1, E, C, I);
  }
}
