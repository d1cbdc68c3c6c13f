// NumPy's .npy arrays and .npz archives (a zip of .npy records, as np.savez writes them), read as
// data: the header is a Python dict literal parsed here by hand (never evaluated), only plain
// little-endian floats in C order are accepted, and the shape is checked against the bytes present
// before anything is allocated. Object arrays (pickles) and structured dtypes are refused.
//
// Format (numpy/lib/format.py): magic "\x93NUMPY", major, minor, header length (u16 LE for
// version 1, u32 LE for 2 and 3), then the header text
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2304, 16384), }
// padded with spaces to a newline, then the raw data. Writers pad so the data starts 64-byte
// aligned, which lets a float32 array be a view of the record's bytes without a copy.

import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';
import { decodeF16 } from '../io/float16.ts';
import { openZip, type ZipArchive } from './zip.ts';

export type NpyDtype = '<f4' | '<f2' | '<f8';

const ITEM_BYTES: Record<NpyDtype, number> = { '<f4': 4, '<f2': 2, '<f8': 8 };
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
// numpy itself refuses headers over 10000 bytes unless told otherwise; this leaves room.
const MAX_HEADER_BYTES = 65536;

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the data from the start of the .npy bytes. */
  dataOffset: number;
  /** numel(shape) * item size. */
  dataBytes: number;
}

export interface NpyArray {
  /** dtype on disk; data is always float32. */
  dtype: NpyDtype;
  shape: number[];
  data: Float32Array;
}

/** Bytes of the header part (magic + version + length + text) needed to parse a header. */
export const NPY_PREFIX_BYTES = 10;

/**
 * Parses the header of `bytes` (a whole .npy, or at least its header). `where` names the file in
 * errors. Does not check that the data is present: see checkNpyData.
 */
export function parseNpyHeader(bytes: Uint8Array, where: string): NpyHeader {
  const bad = (why: string): never => {
    throw new Error(`${where}: not a .npy array we can read (${why})`);
  };
  if (bytes.length < NPY_PREFIX_BYTES || MAGIC.some((b, i) => bytes[i] !== b))
    bad('it does not start with the \\x93NUMPY magic');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let textStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    textStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) bad('the header length is cut off');
    headerLength = view.getUint32(8, true);
    textStart = 12;
  } else return bad(`format version ${major}.${bytes[7]}; versions 1, 2 and 3 exist`);
  if (headerLength > MAX_HEADER_BYTES)
    bad(`header of ${headerLength} bytes, more than the ${MAX_HEADER_BYTES} allowed`);
  if (textStart + headerLength > bytes.length)
    bad(`header of ${headerLength} bytes runs past the ${bytes.length} bytes present`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(textStart, textStart + headerLength),
  );
  const dict = parseHeaderDict(text, (why) => bad(`header ${JSON.stringify(text.trim())}: ${why}`));
  const keys = Object.keys(dict).sort().join(', ');
  if (keys !== 'descr, fortran_order, shape')
    bad(`header keys are ${keys}; expected descr, fortran_order, shape`);
  const { descr, fortran_order: fortran, shape } = dict;
  if (typeof descr !== 'string') return bad('descr is not a string');
  if (descr.endsWith('O')) bad(`dtype ${descr} is an object array (a pickle), which is never read`);
  if (!Object.hasOwn(ITEM_BYTES, descr))
    bad(
      `dtype ${descr} is not supported; supported: little-endian floats <f4, <f2, <f8` +
        (descr.startsWith('>') ? ' (this one is big-endian)' : ''),
    );
  if (typeof fortran !== 'boolean') return bad('fortran_order is not True or False');
  if (fortran) bad('fortran_order is True (column-major); save it with np.ascontiguousarray first');
  if (!Array.isArray(shape)) return bad('shape is not a tuple');
  const dtype = descr as NpyDtype;
  let numel = 1;
  for (const s of shape) {
    numel *= s;
    if (!Number.isSafeInteger(numel)) bad(`shape (${shape.join(', ')}) is too large`);
  }
  const dataBytes = numel * ITEM_BYTES[dtype];
  if (!Number.isSafeInteger(dataBytes)) bad(`shape (${shape.join(', ')}) is too large`);
  return { dtype, shape, dataOffset: textStart + headerLength, dataBytes };
}

type HeaderValue = string | boolean | number[];

/** The header's dict literal: string keys; values a string, True/False or a tuple of integers. */
function parseHeaderDict(text: string, fail: (why: string) => never): Record<string, HeaderValue> {
  let i = 0;
  const space = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\t')) i++;
  };
  const expect = (c: string) => {
    space();
    if (text[i] !== c) fail(`expected ${c} at character ${i}`);
    i++;
  };
  const string = (): string => {
    space();
    const quote = text[i];
    if (quote !== "'" && quote !== '"') fail(`expected a quoted string at character ${i}`);
    const end = text.indexOf(quote, i + 1);
    if (end < 0) fail('unterminated string');
    const s = text.slice(i + 1, end);
    if (s.includes('\\')) fail('escapes in strings are not supported');
    i = end + 1;
    return s;
  };
  const integer = (): number => {
    space();
    const m = /^\d{1,16}/.exec(text.slice(i, i + 17));
    if (!m) fail(`expected a non-negative integer at character ${i}`);
    i += m![0].length;
    if (text[i] === 'L') i++; // Python 2 longs
    return Number(m![0]);
  };
  const value = (): HeaderValue => {
    space();
    if (text[i] === "'" || text[i] === '"') return string();
    if (text.startsWith('True', i)) return ((i += 4), true);
    if (text.startsWith('False', i)) return ((i += 5), false);
    if (text[i] === '[')
      fail('descr is a list: a structured dtype, which is not supported; only float arrays are');
    if (text[i] === '(') {
      i++;
      const items: number[] = [];
      space();
      while (text[i] !== ')') {
        items.push(integer());
        space();
        if (text[i] === ',') i++;
        else if (text[i] !== ')') fail(`expected , or ) in the shape at character ${i}`);
        space();
        if (items.length > 32) fail('shape has more than 32 dimensions');
      }
      i++;
      return items;
    }
    return fail(`unexpected value at character ${i}`);
  };
  const out: Record<string, HeaderValue> = {};
  expect('{');
  space();
  while (text[i] !== '}') {
    const key = string();
    if (Object.hasOwn(out, key)) fail(`key ${key} appears twice`);
    expect(':');
    out[key] = value();
    space();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') fail(`expected , or } at character ${i}`);
    space();
    if (i >= text.length) fail('missing }');
  }
  i++;
  if (text.slice(i).trim() !== '') fail('text after the closing }');
  return out;
}

/** The data of a parsed .npy as float32: a view when it is aligned <f4, else one converted copy. */
export function npyData(bytes: Uint8Array, header: NpyHeader, where: string): Float32Array {
  const present = bytes.length - header.dataOffset;
  if (present !== header.dataBytes)
    throw new Error(
      `${where}: ${header.dtype} array of shape (${header.shape.join(', ')}) needs ${header.dataBytes} bytes of data but ${present} are present` +
        (present < header.dataBytes ? ' (truncated)' : ''),
    );
  assertLittleEndianHost();
  const n = header.dataBytes / ITEM_BYTES[header.dtype];
  const start = bytes.byteOffset + header.dataOffset;
  const raw = bytes.subarray(header.dataOffset);
  if (header.dtype === '<f4') {
    if (start % 4 === 0) return new Float32Array(bytes.buffer, start, n);
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(raw);
    return out;
  }
  const out = new Float32Array(n);
  if (header.dtype === '<f2') {
    const bits =
      start % 2 === 0 ? new Uint16Array(bytes.buffer, start, n) : copyAs(raw, Uint16Array, n);
    decodeF16(bits, out);
  } else {
    const wide =
      start % 8 === 0 ? new Float64Array(bytes.buffer, start, n) : copyAs(raw, Float64Array, n);
    out.set(wide); // native f64 -> f32 conversion
  }
  return out;
}

function copyAs<T extends Uint16Array | Float64Array>(
  raw: Uint8Array,
  Ctor: new (n: number) => T,
  n: number,
): T {
  const out = new Ctor(n);
  new Uint8Array(out.buffer).set(raw);
  return out;
}

function assertLittleEndianHost(): void {
  if (os.endianness() !== 'LE')
    throw new Error('.npy: this reader assumes a little-endian machine');
}

/** Parses a whole .npy held in memory. */
export function readNpy(bytes: Uint8Array, where: string): NpyArray {
  const header = parseNpyHeader(bytes, where);
  return { dtype: header.dtype, shape: header.shape, data: npyData(bytes, header, where) };
}

/** Reads a .npy file. */
export function readNpyFile(file: string): NpyArray {
  return readNpy(new Uint8Array(fs.readFileSync(file)), file);
}

export interface NpzArchive {
  readonly path: string;
  /** Array names (record names without .npy). */
  names(): string[];
  has(name: string): boolean;
  /** An array's dtype and shape from its header alone (reads only the record's first bytes). */
  header(name: string): NpyHeader;
  read(name: string): NpyArray;
  /**
   * For an uncompressed <f4 array, where its data lies in the file, for readers that stream it
   * into their final arrays: they must check that zlib.crc32 over `prefix` and then the data
   * gives `crc`. Undefined for compressed records and other dtypes.
   */
  storedF32(name: string): StoredNpy | undefined;
}

export interface StoredNpy {
  header: NpyHeader;
  /** Absolute file offset of the array's first element. */
  dataStart: number;
  /** The record's bytes before the data (the .npy header), for the CRC. */
  prefix: Uint8Array;
  /** The record's CRC-32. */
  crc: number;
}

/** Opens a .npz (np.savez or np.savez_compressed): the zip directory is read, arrays on demand. */
export function openNpz(file: string): NpzArchive {
  const zip: ZipArchive = openZip(file);
  const records = new Map<string, string>();
  for (const record of zip.names())
    if (record.endsWith('.npy')) records.set(record.slice(0, -4), record);
  const record = (name: string): string => {
    const r = records.get(name);
    if (!r)
      throw new Error(
        `${file}: no array ${name}; the archive holds ${[...records.keys()].join(', ') || 'no .npy arrays'}`,
      );
    return r;
  };
  const where = (name: string) => `${file}: array ${name}`;
  return {
    path: file,
    names: () => [...records.keys()],
    has: (name) => records.has(name),
    header(name) {
      // The header is at most MAX_HEADER_BYTES past a 12-byte prefix; most are 128 bytes.
      const r = record(name);
      let head = zip.readPrefix(r, 256);
      const first = parseNpyPrefixLength(head, where(name));
      if (first > head.length) head = zip.readPrefix(r, first);
      return parseNpyHeader(head, where(name));
    },
    read(name) {
      return readNpy(zip.read(record(name)), where(name));
    },
    storedF32(name) {
      const r = record(name);
      const range = zip.storedRange(r);
      if (!range) return undefined;
      const header = this.header(name);
      if (header.dtype !== '<f4') return undefined;
      if (range.size - header.dataOffset !== header.dataBytes)
        throw new Error(
          `${where(name)}: ${header.dtype} array of shape (${header.shape.join(', ')}) needs ${header.dataBytes} bytes of data but ${range.size - header.dataOffset} are present`,
        );
      const prefix = zip.readPrefix(r, header.dataOffset);
      return { header, dataStart: range.start + header.dataOffset, prefix, crc: range.crc };
    },
  };
}

/** How many bytes the header needs (prefix + text), from its first 12 bytes; 0 when unreadable. */
function parseNpyPrefixLength(head: Uint8Array, where: string): number {
  if (head.length < 12) return 0;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const major = head[6];
  const n = major === 1 ? 10 + v.getUint16(8, true) : 12 + v.getUint32(8, true);
  if (n > MAX_HEADER_BYTES + 12)
    throw new Error(`${where}: not a .npy array we can read (header of ${n} bytes is too long)`);
  return n;
}

/** The .npy header for a C-order <f4 array, padded so the data starts 64-byte aligned. */
export function npyHeaderBytes(shape: number[], dtype: NpyDtype = '<f4'): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let text = `{'descr': '${dtype}', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = 10 + text.length + 1;
  text += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + text.length);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, text.length, true);
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  return out;
}

/**
 * Writes float32 arrays as an uncompressed .npz (what np.savez produces), streaming each array
 * to disk without concatenating. For tests and benchmarks; records must stay under 4 GiB.
 */
export function writeNpz(
  file: string,
  arrays: { name: string; shape: number[]; data: Float32Array }[],
): void {
  const fd = fs.openSync(file, 'w');
  try {
    let offset = 0;
    const write = (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length;)
        done += fs.writeSync(fd, bytes, done, Math.min(1 << 30, bytes.length - done));
      offset += bytes.length;
    };
    const central: Uint8Array[] = [];
    for (const a of arrays) {
      const numel = a.shape.reduce((x, y) => x * y, 1);
      if (numel !== a.data.length)
        throw new Error(
          `${file}: array ${a.name} has ${a.data.length} values, shape (${a.shape}) needs ${numel}`,
        );
      const head = npyHeaderBytes(a.shape);
      const body = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
      const size = head.length + body.length;
      if (size >= 2 ** 32)
        throw new Error(`${file}: array ${a.name} is too large for a zip32 record`);
      const crc = zlib.crc32(body, zlib.crc32(head)) >>> 0;
      const name = new TextEncoder().encode(`${a.name}.npy`);
      const local = new DataView(new ArrayBuffer(30));
      local.setUint32(0, 0x04034b50, true);
      local.setUint16(4, 20, true);
      local.setUint32(14, crc, true);
      local.setUint32(18, size, true);
      local.setUint32(22, size, true);
      local.setUint16(26, name.length, true);
      const entry = new DataView(new ArrayBuffer(46));
      entry.setUint32(0, 0x02014b50, true);
      entry.setUint16(4, 20, true);
      entry.setUint16(6, 20, true);
      entry.setUint32(16, crc, true);
      entry.setUint32(20, size, true);
      entry.setUint32(24, size, true);
      entry.setUint16(28, name.length, true);
      entry.setUint32(42, offset, true);
      central.push(new Uint8Array(entry.buffer), name);
      write(new Uint8Array(local.buffer));
      write(name);
      write(head);
      write(body);
    }
    const cdOffset = offset;
    for (const c of central) write(c);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, arrays.length, true);
    end.setUint16(10, arrays.length, true);
    end.setUint32(12, offset - cdOffset, true);
    end.setUint32(16, cdOffset, true);
    write(new Uint8Array(end.buffer));
  } finally {
    fs.closeSync(fd);
  }
}
