// Row operations on flat row-major arrays [rows, width], shared by the model's backward and the
// attribution passes.

/** src [.., width] -> [rows.length, width] with row r = src row rows[r]. */
export function gatherRows(
  src: Float32Array,
  rows: ArrayLike<number>,
  width: number,
): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (let r = 0; r < rows.length; r++)
    out.set(src.subarray(rows[r] * width, (rows[r] + 1) * width), r * width);
  return out;
}

/** src [rows.length, width] -> [total, width] zeros except row rows[r] = src row r. */
export function scatterRows(
  src: Float32Array,
  rows: ArrayLike<number>,
  width: number,
  total: number,
): Float32Array {
  const out = new Float32Array(total * width);
  for (let r = 0; r < rows.length; r++)
    out.set(src.subarray(r * width, (r + 1) * width), rows[r] * width);
  return out;
}

/** a[aOffset..+d] · b[bOffset..+d] */
export function dotRow(
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  d: number,
): number {
  let s = 0;
  for (let j = 0; j < d; j++) s += a[aOffset + j] * b[bOffset + j];
  return s;
}
