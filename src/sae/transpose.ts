// Transposing float32 matrices, in memory or streamed from a file: the encoder of SAELens, Gemma
// Scope and the decoder of dictionary_learning files are stored the other way round from our
// [F, d] rows, and a 16384 x 2304 matrix is 151 MB, so it should be neither copied twice nor
// walked with a stride through memory.

import fs from 'node:fs';
import zlib from 'node:zlib';

// Tiles of 32x32 floats (4 KiB each side) keep both the rows read and the rows written in L1.
const TILE = 32;

/** a [rows, cols] -> [cols, rows], output row c multiplied by scale[c] when given. */
export function transpose(
  a: Float32Array,
  rows: number,
  cols: number,
  scale?: Float64Array,
): Float32Array {
  const out = new Float32Array(rows * cols);
  transposeRows(a, rows, cols, out, rows, 0, scale);
  return out;
}

/**
 * out[c·outRows + r0 + r] = a[r·cols + c] (· scale[c]) for r < n: rows r0.. of a transposed
 * matrix, tile by tile so that neither side strides through more than a tile's cache lines.
 */
function transposeRows(
  a: Float32Array,
  n: number,
  cols: number,
  out: Float32Array,
  outRows: number,
  r0: number,
  scale: Float64Array | undefined,
): void {
  for (let t0 = 0; t0 < n; t0 += TILE) {
    const t1 = Math.min(n, t0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = t0; r < t1; r++) {
        const i = r * cols;
        const o = r0 + r;
        if (scale) for (let c = c0; c < c1; c++) out[c * outRows + o] = a[i + c] * scale[c];
        else for (let c = c0; c < c1; c++) out[c * outRows + o] = a[i + c];
      }
    }
  }
}

/** Reads exactly target.length bytes at `position`. */
function readFully(fd: number, target: Uint8Array, position: number, file: string): void {
  for (let done = 0; done < target.length;) {
    const n = fs.readSync(
      fd,
      target,
      done,
      Math.min(1 << 30, target.length - done),
      position + done,
    );
    if (n === 0) throw new Error(`${file}: file ended early (truncated?)`);
    done += n;
  }
}

// Rows of a streamed matrix go through a buffer of this size: large enough for few read calls,
// small enough to stay in cache while it is transposed out.
const STREAM_BYTES = 4 << 20;

/**
 * Reads the row-major float32 matrix [rows, cols] at byte `start` of `file` as its transpose
 * [cols, rows], output row c multiplied by scale[c] when given. Rows go through one small buffer,
 * so the matrix is never in memory twice. With `crc`, zlib.crc32 over crc.prefix then the bytes
 * read must give crc.expected (a stored zip record).
 */
export function readTransposedF32(
  file: string,
  start: number,
  rows: number,
  cols: number,
  scale?: Float64Array,
  crc?: { prefix: Uint8Array; expected: number; what: string },
): Float32Array {
  const out = new Float32Array(rows * cols);
  const chunkRows = Math.max(1, Math.floor(STREAM_BYTES / (4 * cols)));
  const buffer = new Float32Array(Math.min(rows, chunkRows) * cols);
  const bytes = new Uint8Array(buffer.buffer);
  let running = crc ? zlib.crc32(crc.prefix) : 0;
  const fd = fs.openSync(file, 'r');
  try {
    for (let r0 = 0; r0 < rows; r0 += chunkRows) {
      const n = Math.min(chunkRows, rows - r0);
      const view = bytes.subarray(0, n * cols * 4);
      readFully(fd, view, start + r0 * cols * 4, file);
      if (crc) running = zlib.crc32(view, running);
      transposeRows(buffer, n, cols, out, rows, r0, scale);
    }
  } finally {
    fs.closeSync(fd);
  }
  if (crc && running >>> 0 !== crc.expected >>> 0)
    throw new Error(`${file}: corrupt zip archive (record ${crc.what} fails its CRC-32 check)`);
  return out;
}
