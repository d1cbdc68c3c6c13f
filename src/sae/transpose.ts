// Transposing float32 matrices, in memory or streamed from a file: the encoder of SAELens, Gemma
// Scope and the decoder of dictionary_learning files are stored the other way round from our
// [F, d] rows, and a 16384 x 2304 matrix is 151 MB, so it should be neither copied twice nor
// walked with a stride through memory.

import fs from 'node:fs';
import zlib from 'node:zlib';

// Tiles of 8 source rows by 128 columns: the 8 rows read (4 KiB) and the 128 output runs of 8
// floats written stay in L1 even though both strides are large powers of two (16384 floats).
const TILE_ROWS = 8;
const TILE_COLS = 128;

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
 * matrix, eight source rows at a time so that each output row gets a run of eight adjacent values
 * per visit. Unscaled values move as 32-bit integers: no float conversion in the JIT, every bit
 * pattern kept.
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
  const full = n - (n % TILE_ROWS);
  for (let c0 = 0; c0 < cols; c0 += TILE_COLS) {
    const c1 = Math.min(cols, c0 + TILE_COLS);
    if (scale) scaledTile(a, full, cols, out, outRows, r0, c0, c1, scale);
    else
      bitsTile(
        new Int32Array(a.buffer, a.byteOffset, a.length),
        full,
        cols,
        new Int32Array(out.buffer, out.byteOffset, out.length),
        outRows,
        r0,
        c0,
        c1,
      );
    for (let r = full; r < n; r++) {
      for (let c = c0, i = r * cols + c0, o = c0 * outRows + r0 + r; c < c1; c++, i++) {
        out[o] = scale ? a[i] * scale[c] : a[i];
        o += outRows;
      }
    }
  }
}

/** Columns c0..c1 of the first `full` rows (a multiple of 8), moved as bits. */
function bitsTile(
  a: Int32Array,
  full: number,
  cols: number,
  out: Int32Array,
  outRows: number,
  r0: number,
  c0: number,
  c1: number,
): void {
  const [k2, k4] = [cols * 2, cols * 4];
  for (let r = 0; r < full; r += TILE_ROWS) {
    for (let c = c0, i = r * cols + c0, o = c0 * outRows + r0 + r; c < c1; c++, i++) {
      out[o] = a[i];
      out[o + 1] = a[i + cols];
      out[o + 2] = a[i + k2];
      out[o + 3] = a[i + k2 + cols];
      out[o + 4] = a[i + k4];
      out[o + 5] = a[i + k4 + cols];
      out[o + 6] = a[i + k4 + k2];
      out[o + 7] = a[i + k4 + k2 + cols];
      o += outRows;
    }
  }
}

/** The same with output row c multiplied by scale[c] (one multiply per value, as float32(a·s)). */
function scaledTile(
  a: Float32Array,
  full: number,
  cols: number,
  out: Float32Array,
  outRows: number,
  r0: number,
  c0: number,
  c1: number,
  scale: Float64Array,
): void {
  const [k2, k4] = [cols * 2, cols * 4];
  for (let r = 0; r < full; r += TILE_ROWS) {
    for (let c = c0, i = r * cols + c0, o = c0 * outRows + r0 + r; c < c1; c++, i++) {
      const s = scale[c];
      out[o] = a[i] * s;
      out[o + 1] = a[i + cols] * s;
      out[o + 2] = a[i + k2] * s;
      out[o + 3] = a[i + k2 + cols] * s;
      out[o + 4] = a[i + k4] * s;
      out[o + 5] = a[i + k4 + cols] * s;
      out[o + 6] = a[i + k4 + k2] * s;
      out[o + 7] = a[i + k4 + k2 + cols] * s;
      o += outRows;
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
