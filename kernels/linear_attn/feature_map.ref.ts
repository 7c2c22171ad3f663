// CPU reference of fla linear attention's feature maps φ (spec-deltanet-attention-qwen3next.md §5.3 steps 3–4), per
// head vector x of DK values → DF features: identity, relu, elu(x)+1, Hadamard (x·W₁ᵀ+b₁)⊙(x·W₂ᵀ+b₂), t2r relu(x·Wᵀ+b);
// then optionally x ← x/(Σx + 1e−4) (norm_q / norm_k).

export const FEATURE_MAP = { identity: 0, relu: 1, elu: 2, elementwise_product: 3, t2r: 4 } as const;
export type FeatureMap = keyof typeof FEATURE_MAP;

/** Linear layers a map owns (W [n, DK, DK] and b [n, DK]). */
export const FEATURE_LAYERS: Record<FeatureMap, number> = { identity: 0, relu: 0, elu: 0, elementwise_product: 2, t2r: 1 };

export interface FeatureMapDims { map: FeatureMap; heads: number; DK: number; norm: boolean }

/** x [R, heads·DK] → y [R, heads·DK]; W [n, DK, DK] (out, in) f32 or null, b [n, DK] or null. */
export function featureMapRef(x: Float32Array, W: Float32Array | null, b: Float32Array | null, y: Float32Array, R: number, d: FeatureMapDims): void {
  const { DK } = d, C = d.heads * DK;
  const lin = (layer: number, xo: number, f: number) => {
    let s = 0;
    for (let i = 0; i < DK; i++) s += x[xo + i]! * W![(layer * DK + f) * DK + i]!;
    return Math.fround(s + (b ? b[layer * DK + f]! : 0));
  };
  for (let r = 0; r < R; r++) {
    for (let h = 0; h < d.heads; h++) {
      const xo = r * C + h * DK;
      let sum = 0;
      for (let f = 0; f < DK; f++) {
        let v: number;
        const xv = x[xo + f]!;
        switch (d.map) {
          case 'identity': v = xv; break;
          case 'relu': v = Math.max(xv, 0); break;
          case 'elu': v = xv > 0 ? xv + 1 : Math.exp(xv); break;
          case 'elementwise_product': v = lin(0, xo, f) * lin(1, xo, f); break;
          case 't2r': v = Math.max(lin(0, xo, f), 0); break;
        }
        y[xo + f] = v;
        sum += v;
      }
      if (d.norm) { const inv = 1 / (sum + 1e-4); for (let f = 0; f < DK; f++) y[xo + f] = y[xo + f]! * inv; }
    }
  }
}
