// CPU reference of the SwiGLU product: y = silu(a) ⊙ b (the MLP of Llama/Qwen/DeltaNet families).

export function siluMulRef(a: Float32Array, b: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) { const v = a[i]!; y[i] = v / (1 + Math.exp(-v)) * b[i]!; }
}
