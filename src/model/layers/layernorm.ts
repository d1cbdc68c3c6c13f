// LayerNorm over the last dimension: N rows of d features, biased variance, eps inside the root.
// Statistics are accumulated in float64 and kept as float64 (mean, rstd [N]) for the backward.

/** x [N, d], weight/bias [d] -> out [N, d]; mean, rstd [N] saved for the backward. */
export function layerNormForward(
  out: Float32Array,
  mean: Float64Array,
  rstd: Float64Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  N: number,
  d: number,
  eps: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * d;
    let sum = 0;
    for (let i = 0; i < d; i++) sum += x[o + i];
    const m = sum / d;
    let sq = 0;
    for (let i = 0; i < d; i++) {
      const c = x[o + i] - m;
      sq += c * c;
    }
    const r = 1 / Math.sqrt(sq / d + eps);
    for (let i = 0; i < d; i++) out[o + i] = (x[o + i] - m) * r * weight[i] + bias[i];
    mean[n] = m;
    rstd[n] = r;
  }
}

/**
 * dOut [N, d], x [N, d] (the forward input), mean/rstd [N], weight [d]:
 * dx [N, d] += input gradient; dWeight, dBias [d] += parameter gradients (skipped when null).
 */
export function layerNormBackward(
  dx: Float32Array,
  dWeight: Float32Array | null,
  dBias: Float32Array | null,
  dOut: Float32Array,
  x: Float32Array,
  mean: Float64Array,
  rstd: Float64Array,
  weight: Float32Array,
  N: number,
  d: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * d;
    const m = mean[n];
    const r = rstd[n];
    // dx = r * (g - mean(g) - xhat * mean(g * xhat)) with g = dOut * weight
    let sumG = 0;
    let sumGX = 0;
    for (let i = 0; i < d; i++) {
      const g = dOut[o + i] * weight[i];
      sumG += g;
      sumGX += g * (x[o + i] - m) * r;
    }
    const meanG = sumG / d;
    const meanGX = sumGX / d;
    for (let i = 0; i < d; i++) {
      const xhat = (x[o + i] - m) * r;
      dx[o + i] += r * (dOut[o + i] * weight[i] - meanG - xhat * meanGX);
    }
    if (dWeight && dBias) {
      for (let i = 0; i < d; i++) {
        dWeight[i] += dOut[o + i] * (x[o + i] - m) * r;
        dBias[i] += dOut[o + i];
      }
    }
  }
}
