// Affine layer in PyTorch layout: out = x · Wᵀ + b with W [out, in]. N rows, I = in, O = out.

import { matmul } from '../../kernels/gemm.ts';

/** x [N, I], weight [O, I], bias [O] or null -> out [N, O]. */
export function linearForward(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  N: number,
  I: number,
  O: number,
): void {
  matmul(x, weight, out, N, O, I, { transB: true });
  if (bias) {
    for (let n = 0; n < N; n++) {
      const o = n * O;
      for (let j = 0; j < O; j++) out[o + j] += bias[j];
    }
  }
}

/**
 * dOut [N, O], x [N, I] (the forward input), weight [O, I]:
 * dx [N, I] is overwritten (skipped when null); dWeight [O, I] and dBias [O] are accumulated (+=).
 */
export function linearBackward(
  dx: Float32Array | null,
  dWeight: Float32Array | null,
  dBias: Float32Array | null,
  dOut: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  N: number,
  I: number,
  O: number,
): void {
  if (dx) matmul(dOut, weight, dx, N, I, O);
  if (dWeight) matmul(dOut, x, dWeight, O, I, N, { transA: true, accumulate: true });
  if (dBias) {
    for (let n = 0; n < N; n++) {
      const o = n * O;
      for (let j = 0; j < O; j++) dBias[j] += dOut[o + j];
    }
  }
}
