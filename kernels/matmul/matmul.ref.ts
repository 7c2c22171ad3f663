// CPU reference of matmul: y[r, o] (+)= act(Σ_i x[r, i]·W[o, i] + bias[o]) — nn.Linear with a fused activation.

export const ACT = { none: 0, tanh: 1, sigmoid: 2, relu2: 3, rwkv_decay: 4 } as const;
export type Act = keyof typeof ACT;

const NEG_EXP_HALF = -0.6065306597126334; // −e^{−0.5}, RWKV7 log-decay scale (spec §1.3 step 4)

export function applyAct(act: Act, v: number): number {
  switch (act) {
    case 'none': return v;
    case 'tanh': return Math.tanh(v);
    case 'sigmoid': return 1 / (1 + Math.exp(-v));
    case 'relu2': return v > 0 ? v * v : 0;
    case 'rwkv_decay': return NEG_EXP_HALF / (1 + Math.exp(-v));
  }
}

/** x [R, IN], w [OUT, IN], bias [OUT] | null → y [R, OUT]; accumulate adds into y. */
export function matmulRef(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array,
  R: number, IN: number, OUT: number, act: Act = 'none', accumulate = false): void {
  for (let r = 0; r < R; r++) {
    const xo = r * IN;
    for (let o = 0; o < OUT; o++) {
      const wo = o * IN;
      let s = 0;
      for (let i = 0; i < IN; i++) s += x[xo + i]! * w[wo + i]!;
      let v = applyAct(act, Math.fround(s + (bias ? bias[o]! : 0)));
      if (accumulate) v += y[r * OUT + o]!;
      y[r * OUT + o] = v;
    }
  }
}
