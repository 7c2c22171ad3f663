// CPU reference of LayerNorm over rows: y = (x − μ)/sqrt(var + eps)·w (+ b), biased variance (spec §0.1).

/** x, y [R, C] (may alias); w, b [C]. */
export function layerNormRef(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, R: number, C: number, eps: number): void {
  for (let r = 0; r < R; r++) {
    const o = r * C;
    let mu = 0;
    for (let c = 0; c < C; c++) mu += x[o + c]!;
    mu /= C;
    let v = 0;
    for (let c = 0; c < C; c++) { const d = x[o + c]! - mu; v += d * d; }
    const inv = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) y[o + c] = (x[o + c]! - mu) * inv * w[c]! + (b ? b[c]! : 0);
  }
}
