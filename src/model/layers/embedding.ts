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

/** out [B, T, d] += positions [maxPositions, d] rows P..P+T-1 (GPT-2's learned positions). */
export function positionEmbeddingForward(
  out: Float32Array,
  positions: Float32Array,
  B: number,
  T: number,
  d: number,
  P = 0,
): void {
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * d;
      const row = (P + t) * d;
      for (let i = 0; i < d; i++) out[o + i] += positions[row + i];
    }
}

/** dOut [B, T, d] -> dPositions [maxPositions, d] rows P..P+T-1 += the sum over the batch. */
export function positionEmbeddingBackward(
  dPositions: Float32Array,
  dOut: Float32Array,
  B: number,
  T: number,
  d: number,
  P = 0,
): void {
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * d;
      const row = (P + t) * d;
      for (let i = 0; i < d; i++) dPositions[row + i] += dOut[o + i];
    }
}
