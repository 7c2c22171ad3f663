// CPU reference of rotary position embeddings (spec-deltanet-attention-qwen3next.md §1.6): the host-side
// cos/sin table with torch's fp32 rounding, and rotate-half (GPT-NeoX layout) on the first R dims of each head.
import type { Cursor } from '../../src/util/step.ts';

export interface RopeScaling { type: 'default' | 'llama3'; factor?: number; lowFreqFactor?: number; highFreqFactor?: number; originalMax?: number }

/** inv_freq[i] = 1/θ^(2i/R) rounded as torch computes it in fp32, with optional llama3 rescaling. */
export function invFreq(theta: number, R: number, scaling: RopeScaling = { type: 'default' }): Float32Array {
  const inv = new Float32Array(R / 2);
  for (let i = 0; i < R / 2; i++) inv[i] = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / R)));
  if (scaling.type === 'llama3') {
    const s = scaling.factor ?? 8, l = scaling.lowFreqFactor ?? 1, hf = scaling.highFreqFactor ?? 4, L0 = scaling.originalMax ?? 8192;
    for (let i = 0; i < inv.length; i++) {
      const lambda = (2 * Math.PI) / inv[i]!;
      if (lambda > L0 / l) inv[i] = inv[i]! / s;
      else if (lambda >= L0 / hf) { const a = (L0 / lambda - l) / (hf - l); inv[i] = (1 - a) * inv[i]! / s + a * inv[i]!; }
    }
  }
  return inv;
}

/** [2, P, R/2]: cos plane then sin plane of the fp32 angle p·inv_freq. */
export function ropeTable(inv: Float32Array, P: number): Float32Array {
  const h = inv.length, t = new Float32Array(2 * P * h);
  for (let p = 0; p < P; p++) for (let i = 0; i < h; i++) {
    const a = Math.fround(Math.fround(p) * inv[i]!);
    t[p * h + i] = Math.cos(a);
    t[P * h + p * h + i] = Math.sin(a);
  }
  return t;
}

/** In place on x [N, H·D]: rotate the first R dims of each head by the token's position (cursor.pos + offset, at most P − 1). */
export function ropeRef(x: Float32Array, table: Float32Array, cursors: Cursor[], H: number, D: number, R: number, P: number): void {
  const h = R / 2;
  for (const cur of cursors) for (let t = cur.start; t < cur.start + cur.len; t++) {
    const p = Math.min((cur.pos ?? 0) + t - cur.start, P - 1);   // past the table: its last row (as rope.wgsl)
    for (let hd = 0; hd < H; hd++) {
      const b = t * H * D + hd * D;
      for (let i = 0; i < h; i++) {
        const c = table[p * h + i]!, s = table[P * h + p * h + i]!;
        const x1 = x[b + i]!, x2 = x[b + i + h]!;
        x[b + i] = x1 * c - x2 * s;
        x[b + i + h] = x2 * c + x1 * s;
      }
    }
  }
}
