// Row operations on flat row-major arrays [rows, width], as the node passes use them (the ones the
// model shares are in kernels/rows.ts).

import { gatherRows } from '../kernels/rows.ts';

/** 0, 1, ..., count - 1 */
export function firstRows(count: number): number[] {
  return Array.from({ length: count }, (_, r) => r);
}

/** x += a - b, elementwise. */
export function addDifference(x: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] += a[i] - b[i];
}

/** src [.., T, d] -> [rows.length, T-P, d]: positions P.. of rows `rows`. */
export function suffixRows(src: Float32Array, rows: number[], T: number, P: number, d: number) {
  if (P === 0) return gatherRows(src, rows, T * d);
  const out = new Float32Array(rows.length * (T - P) * d);
  rows.forEach((b, r) => out.set(src.subarray((b * T + P) * d, (b + 1) * T * d), r * (T - P) * d));
  return out;
}

/** Rows `rows` of a [.., d] and then the same rows of b: [2·rows.length, d]. */
export function concatRows(
  a: Float32Array,
  b: Float32Array,
  rows: number[],
  d: number,
): Float32Array {
  const out = new Float32Array(2 * rows.length * d);
  rows.forEach((n, r) => {
    out.set(a.subarray(n * d, (n + 1) * d), r * d);
    out.set(b.subarray(n * d, (n + 1) * d), (rows.length + r) * d);
  });
  return out;
}

/** a[o..o+d) differs from b[o..o+d) somewhere. */
export function rowsDiffer(a: Float32Array, b: Float32Array, o: number, d: number): boolean {
  for (let j = o; j < o + d; j++) if (a[j] !== b[j]) return true;
  return false;
}

/** out = clean + alpha (patch - clean). */
export function interpolate(
  out: Float32Array,
  clean: Float32Array,
  patch: Float32Array,
  alpha: number,
) {
  for (let i = 0; i < out.length; i++) out[i] = clean[i] + alpha * (patch[i] - clean[i]);
}

/** grad = (grad + the `count` gradients stacked in g) / divisor. */
export function addSteps(
  grad: Float32Array,
  g: Float32Array,
  count: number,
  divisor: number,
): void {
  const size = grad.length;
  for (let k = 0; k < count; k++) for (let i = 0, o = k * size; i < size; i++, o++) grad[i] += g[o];
  for (let i = 0; i < size; i++) grad[i] /= divisor;
}
