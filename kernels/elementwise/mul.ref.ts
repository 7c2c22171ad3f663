// CPU reference of the scaled product: y[r, c] (+)= a[r, c] · s[r, j], j = c (elementwise, s as wide as a) or a
// fixed column `col` of s (one scale per row: MoE routing weights, the shared-expert gate).

export function mulRef(a: Float32Array, s: Float32Array, y: Float32Array, R: number, C: number, S: number, col: number | null, accumulate: boolean): void {
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const i = r * C + c, v = a[i]! * s[col === null ? i : r * S + col]!;
      y[i] = accumulate ? y[i]! + v : v;
    }
  }
}
