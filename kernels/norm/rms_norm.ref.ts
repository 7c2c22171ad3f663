// CPU reference of RMSNorm over rows of width C: y = x / sqrt(mean(x²) + eps) · w (spec §0.1), with the
// variants the families need: no weight, zero-centred weight (1 + w, Qwen3-Next) and a SiLU gate
// (fla FusedRMSNormGated: y = RMSNorm(x)·w·silu(g)). Rows = tokens × G groups (G > 1 for per-head norms).

export interface RmsNormOpts {
  eps: number; plusOne?: boolean; gate?: Float32Array | null;
  /** the gate's layout: head j of token t at gate[t·gS + gOff + j·C …] (default: x's, gS = G·C, gOff = 0) */
  gS?: number; gOff?: number; G?: number;
}

/** x, y [R, C]; gate as RmsNormOpts says; w [C] or null. */
export function rmsNormRef(x: Float32Array, w: Float32Array | null, y: Float32Array, R: number, C: number, o: RmsNormOpts): void {
  for (let r = 0; r < R; r++) {
    const b = r * C, G = o.G ?? 1, gb = Math.floor(r / G) * (o.gS ?? G * C) + (o.gOff ?? 0) + (r % G) * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[b + c]! * x[b + c]!;
    const inv = 1 / Math.sqrt(ss / C + o.eps);
    for (let c = 0; c < C; c++) {
      let v = x[b + c]! * inv;
      if (w) v *= o.plusOne ? 1 + w[c]! : w[c]!;
      if (o.gate) { const g = o.gate[gb + c]!; v *= g / (1 + Math.exp(-g)); }
      y[b + c] = v;
    }
  }
}
