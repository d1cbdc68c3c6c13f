// Feature deltas of a site: the clean and patch features' sorted CSR rows merged into
// Δf = f_patch - f_clean, without a dense [rows, F] pass.

import type { SparseRows } from '../sae/dictionary.ts';

/**
 * Clean and patch features of the live rows (CSR over live.length rows, possibly views into
 * shared entry arrays; live[r] is row r's batch row) -> Δf = f_patch - f_clean where non-zero,
 * and f_clean, as CSR over the N rows. Merges the two rows' sorted indices: no dense [rows, F] pass.
 */
export function featureDeltas(
  clean: SparseRows,
  patch: SparseRows,
  live: number[],
  N: number,
): { delta: SparseRows; cleanActive: SparseRows } {
  const R = live.length;
  const cap = clean.rowStart[R] - clean.rowStart[0] + (patch.rowStart[R] - patch.rowStart[0]);
  const index = new Int32Array(cap);
  const value = new Float32Array(cap);
  const rowStart = new Int32Array(N + 1);
  const cleanStart = new Int32Array(N + 1);
  const END = 0x7fffffff; // past every feature id
  let e = 0;
  let r = 0;
  for (let n = 0; n < N; n++) {
    rowStart[n] = e;
    cleanStart[n] = clean.rowStart[r];
    if (live[r] !== n) continue;
    let i = clean.rowStart[r];
    let j = patch.rowStart[r];
    const iEnd = clean.rowStart[r + 1];
    const jEnd = patch.rowStart[r + 1];
    while (i < iEnd || j < jEnd) {
      const ci = i < iEnd ? clean.index[i] : END;
      const pj = j < jEnd ? patch.index[j] : END;
      let k: number;
      let v: number;
      if (ci === pj) {
        k = ci;
        v = Math.fround(patch.value[j++] - clean.value[i++]);
      } else if (ci < pj) {
        k = ci;
        v = -clean.value[i++];
      } else {
        k = pj;
        v = patch.value[j++];
      }
      if (v !== 0) {
        index[e] = k;
        value[e++] = v;
      }
    }
    r++;
  }
  rowStart[N] = e;
  cleanStart[N] = clean.rowStart[r];
  return {
    delta: { rowStart, index: index.slice(0, e), value: value.slice(0, e) },
    cleanActive: { rowStart: cleanStart, index: clean.index, value: clean.value },
  };
}
