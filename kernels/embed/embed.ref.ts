// CPU reference of the embedding lookup x[t] = table[ids[t]] and of the row gather y[j] = x[rows[j]].

export function embedRef(ids: ArrayLike<number>, table: Float32Array, x: Float32Array, C: number): void {
  for (let t = 0; t < ids.length; t++) x.set(table.subarray(ids[t]! * C, ids[t]! * C + C), t * C);
}

export function gatherRowsRef(x: Float32Array, rows: ArrayLike<number>, y: Float32Array, C: number): void {
  for (let j = 0; j < rows.length; j++) y.set(x.subarray(rows[j]! * C, rows[j]! * C + C), j * C);
}
