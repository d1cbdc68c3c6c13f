// RMSNorm over the last dimension: out = x · rsqrt(mean(x²) + eps) · (offset + w).
// offset 0 is Llama/Qwen (`weight * x_hat`), offset 1 is Gemma (`x_hat * (1 + weight)`).
// N rows of D features (D = d for the residual norms, head_dim for Qwen3's q/k norms).
// The statistic is accumulated in float64 and kept (rstd [N]) for the backward.

/** x [N, D], weight [D] -> out [N, D]; rstd [N] saved for the backward. out may not alias x. */
export function rmsNormForward(
  out: Float32Array,
  rstd: Float64Array,
  x: Float32Array,
  weight: Float32Array,
  N: number,
  D: number,
  eps: number,
  offset: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * D;
    let sq = 0;
    for (let i = 0; i < D; i++) sq += x[o + i] * x[o + i];
    const r = 1 / Math.sqrt(sq / D + eps);
    for (let i = 0; i < D; i++) out[o + i] = x[o + i] * r * (offset + weight[i]);
    rstd[n] = r;
  }
}

/**
 * dOut [N, D], x [N, D] (the forward input), rstd [N], weight [D]:
 * dx [N, D] += input gradient; dWeight [D] += parameter gradient (skipped when null).
 */
export function rmsNormBackward(
  dx: Float32Array,
  dWeight: Float32Array | null,
  dOut: Float32Array,
  x: Float32Array,
  rstd: Float64Array,
  weight: Float32Array,
  N: number,
  D: number,
  offset: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * D;
    const r = rstd[n];
    // dx = r (g - x_hat mean(g x_hat)) with g = dOut (offset + w), x_hat = x r
    let sumGX = 0;
    for (let i = 0; i < D; i++) sumGX += dOut[o + i] * (offset + weight[i]) * x[o + i] * r;
    const meanGX = sumGX / D;
    for (let i = 0; i < D; i++) {
      const xhat = x[o + i] * r;
      dx[o + i] += r * (dOut[o + i] * (offset + weight[i]) - xhat * meanGX);
    }
    if (dWeight) for (let i = 0; i < D; i++) dWeight[i] += dOut[o + i] * x[o + i] * r;
  }
}
