// CPU reference of moe_topk (spec-deltanet-attention-qwen3next.md §8.6): per token row,
//   p = softmax(logits[:E]) over E experts; the top-k of p (value descending, lower index first on ties);
//   sel[r, j] = the j-th expert (as a number), sel[r, K + j] = p (or p / Σ_top-k p with norm_topk_prob);
//   shared: logits[r, E] is the shared expert's gate logit and sel[r, 2K] = σ(it).

/** logits [R, E (+1 with shared)] → sel [R, 2K (+1)]. */
export function moeTopkRef(logits: Float32Array, sel: Float32Array, R: number, E: number, K: number, norm: boolean, shared = false): void {
  const p = new Float64Array(E), LW = E + (shared ? 1 : 0), SW = 2 * K + (shared ? 1 : 0);
  for (let r = 0; r < R; r++) {
    const base = r * LW;
    let m = -Infinity;
    for (let e = 0; e < E; e++) m = Math.max(m, logits[base + e]!);
    let sum = 0;
    for (let e = 0; e < E; e++) { p[e] = Math.exp(logits[base + e]! - m); sum += p[e]!; }
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => p[b]! - p[a]! || a - b).slice(0, K);
    let tot = 0;
    for (const e of order) tot += p[e]! / sum;
    order.forEach((e, j) => {
      sel[r * SW + j] = e;
      sel[r * SW + K + j] = norm ? p[e]! / sum / tot : p[e]! / sum;
    });
    if (shared) sel[r * SW + 2 * K] = 1 / (1 + Math.exp(-logits[base + E]!));
  }
}
