// CPU reference of the MoE router (spec-deltanet-attention-qwen3next.md §8.6, §11.18): per token row,
//   p = softmax(logits) over E experts;  the top-k of p (value descending, lower index first on ties);
//   w[e] = p[e] (or p[e] / Σ_top-k p with norm_topk_prob) for the k selected experts, 0 for the others.

/** logits [R, E] → w [R, E] (routing weight of each expert for each row; k non-zero per row). */
export function moeRouteRef(logits: Float32Array, w: Float32Array, R: number, E: number, K: number, norm: boolean): void {
  const p = new Float64Array(E);
  for (let r = 0; r < R; r++) {
    const base = r * E;
    let m = -Infinity;
    for (let e = 0; e < E; e++) m = Math.max(m, logits[base + e]!);
    let sum = 0;
    for (let e = 0; e < E; e++) { p[e] = Math.exp(logits[base + e]! - m); sum += p[e]!; }
    for (let e = 0; e < E; e++) p[e]! /= sum;
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => p[b]! - p[a]! || a - b);
    const top = order.slice(0, K);
    let tot = 0;
    for (const e of top) tot += p[e]!;
    for (let e = 0; e < E; e++) w[base + e] = 0;
    for (const e of top) w[base + e] = norm ? p[e]! / tot : p[e]!;
  }
}
