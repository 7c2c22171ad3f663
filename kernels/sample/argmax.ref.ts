// CPU reference of argmax: per row of logits [K, V], the index of the largest value (NaN counts as −∞; the lowest
// index wins ties, so an all −∞ row gives 0, as src/runtime/sample.ts's argmax does) and a non-finite flag.

export interface ArgmaxResult { ids: Int32Array; nonFinite: Uint8Array }

export function argmaxRef(logits: Float32Array, K: number, V: number): ArgmaxResult {
  const ids = new Int32Array(K), nonFinite = new Uint8Array(K);
  for (let r = 0; r < K; r++) {
    let best = 0, bestV = -Infinity, bad = 0;
    for (let i = 0; i < V; i++) {
      let v = logits[r * V + i]!;
      if (!Number.isFinite(v)) { bad = 1; if (v !== v) v = -Infinity; }
      if (v > bestV) { bestV = v; best = i; }
    }
    ids[r] = best;
    nonFinite[r] = bad;
  }
  return { ids, nonFinite };
}
