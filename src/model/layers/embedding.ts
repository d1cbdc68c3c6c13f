// Token embedding lookup (gpt_neox.embed_in). N = B*T token rows, d model dim, V vocab.

/** ids [N], table [V, d] -> out [N, d] (ids are validated by the caller). */
export function embeddingForward(
  out: Float32Array,
  ids: Int32Array,
  table: Float32Array,
  N: number,
  d: number,
): void {
  for (let n = 0; n < N; n++) {
    const row = ids[n] * d;
    out.set(table.subarray(row, row + d), n * d);
  }
}

/** dOut [N, d], ids [N] -> dTable [V, d] += the rows of dOut, scattered to their token ids. */
export function embeddingBackward(
  dTable: Float32Array,
  dOut: Float32Array,
  ids: Int32Array,
  N: number,
  d: number,
): void {
  for (let n = 0; n < N; n++) {
    const row = ids[n] * d;
    const src = n * d;
    for (let i = 0; i < d; i++) dTable[row + i] += dOut[src + i];
  }
}
