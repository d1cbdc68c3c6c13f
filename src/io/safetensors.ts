// Safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian u64 header
// length N, N bytes of JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the tensor bytes (offsets relative to the start of that byte buffer).
// Tensors are read lazily at their offsets, so opening a multi-GB checkpoint costs only its header.

import fs from 'node:fs';
import os from 'node:os';
import { decodeBF16, decodeF16, encodeBF16, encodeF16 } from './float16.ts';
import { briefJson } from './validation.ts';

export type Dtype = 'F32' | 'F16' | 'BF16';

export interface TensorData {
  dtype: Dtype; // dtype on disk
  shape: number[];
  data: Float32Array; // always converted to f32, row-major
}

export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  names(): string[];
  has(name: string): boolean;
  shape(name: string): number[];
  dtype(name: string): string;
  /** Where a tensor's bytes lie in the file (absolute offset), for readers that stream them. */
  byteRange(name: string): { begin: number; byteLength: number };
  read(name: string): TensorData;
}

const SUPPORTED: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };
// Bytes per element of every dtype the format defines, to validate entries we will never read.
const ELEMENT_BYTES: Record<string, number> = {
  ...SUPPORTED,
  F64: 8,
  I64: 8,
  U64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
const SUPPORTED_LIST = Object.keys(SUPPORTED).join(', ');
const MAX_HEADER_BYTES = 100_000_000; // the reference implementation's limit
const READ_CHUNK = 1 << 30; // readSync takes at most ~2 GB per call

function assertLittleEndianHost(): void {
  if (os.endianness() !== 'LE')
    throw new Error('safetensors: this reader assumes a little-endian machine');
}

interface Entry {
  dtype: string;
  shape: number[];
  begin: number; // absolute file offset
  byteLength: number;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** A few tensor names to show next to a missing one: those sharing the longest prefix with it first. */
function suggestNames(wanted: string, names: string[], count = 5): string {
  const common = (n: string) => {
    let i = 0;
    while (i < n.length && i < wanted.length && n[i] === wanted[i]) i++;
    return i;
  };
  const ranked = [...names].sort((a, b) => common(b) - common(a));
  const shown = ranked.slice(0, count).join(', ');
  return names.length > count ? `${shown}, ... (${names.length} in all)` : shown;
}

function readFully(fd: number, target: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < target.length) {
    const n = fs.readSync(
      fd,
      target,
      done,
      Math.min(READ_CHUNK, target.length - done),
      position + done,
    );
    if (n === 0) throw new Error(`${path}: file ended early (truncated while reading?)`);
    done += n;
  }
}

function parseHeader(path: string, fd: number, fileSize: number) {
  if (fileSize < 8)
    throw new Error(
      `${path}: file too short to be safetensors (${fileSize} bytes; needs at least the 8-byte header length)`,
    );
  const lenBytes = new Uint8Array(8);
  readFully(fd, lenBytes, 0, path);
  const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (headerLen > BigInt(fileSize - 8) || headerLen > BigInt(MAX_HEADER_BYTES)) {
    const looksZip = lenBytes[0] === 0x50 && lenBytes[1] === 0x4b; // "PK"
    throw new Error(
      `${path}: header length ${headerLen} bytes is larger than the file (${fileSize} bytes); not a safetensors file` +
        (looksZip ? ' (it looks like a zip archive, e.g. a PyTorch .bin/.pt checkpoint)' : ''),
    );
  }
  const N = Number(headerLen);
  const headerBytes = new Uint8Array(N);
  readFully(fd, headerBytes, 8, path);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new Error(`${path}: header is not valid JSON (${(e as Error).message})`, {
      cause: e,
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error(`${path}: header is JSON but not an object of tensors`);

  const dataStart = 8 + N;
  const bufferSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, Entry>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        throw new Error(`${path}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw))
        metadata[k] = typeof v === 'string' ? v : briefJson(v, 1000);
      continue;
    }
    const bad = (why: string) => new Error(`${path}: tensor ${name}: ${why}`);
    if (typeof raw !== 'object' || raw === null) throw bad('header entry is not an object');
    const { dtype, shape, data_offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== 'string') throw bad('missing dtype');
    if (
      !Array.isArray(shape) ||
      !shape.every((s) => typeof s === 'number' && Number.isSafeInteger(s) && s >= 0)
    )
      throw bad(`shape ${briefJson(shape)} is not a list of non-negative integers`);
    if (
      !Array.isArray(data_offsets) ||
      data_offsets.length !== 2 ||
      !data_offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) ||
      data_offsets[0] > data_offsets[1]
    )
      throw bad(`data_offsets ${briefJson(data_offsets)} is not a pair [begin, end]`);
    const [begin, end] = data_offsets as number[];
    if (end > bufferSize)
      throw bad(
        `data_offsets [${begin}, ${end}] run past the end of the file (the data buffer has ${bufferSize} bytes; truncated download?)`,
      );
    const elementBytes = Object.hasOwn(ELEMENT_BYTES, dtype) ? ELEMENT_BYTES[dtype] : undefined;
    // numel(shape) is exact below 2^53; a larger product cannot equal a byte span in the file.
    if (elementBytes !== undefined && end - begin !== numel(shape) * elementBytes)
      throw bad(
        `holds ${end - begin} bytes but ${dtype} ${briefJson(shape)} needs ${numel(shape) * elementBytes}`,
      );
    entries.set(name, {
      dtype,
      shape: shape as number[],
      begin: dataStart + begin,
      byteLength: end - begin,
    });
  }
  // No two tensors share bytes (the format lays them out one after another).
  const spans = [...entries]
    .filter(([, e]) => e.byteLength > 0)
    .sort(([, a], [, b]) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1];
    const [name, e] = spans[i];
    if (e.begin < prev.begin + prev.byteLength)
      throw new Error(
        `${path}: tensors ${prevName} and ${name} overlap (bytes ${prev.begin - dataStart}..${prev.begin - dataStart + prev.byteLength} and ${e.begin - dataStart}..${e.begin - dataStart + e.byteLength} of the data buffer)`,
      );
  }
  return { metadata, entries };
}

/** Parses the header only; tensors are read from disk when asked for. */
export function openSafetensors(path: string): SafetensorsFile {
  assertLittleEndianHost();
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch {
    throw new Error(`${path}: no such file`);
  }
  if (!stat.isFile()) throw new Error(`${path}: not a file`);
  const fd = fs.openSync(path, 'r');
  let header: ReturnType<typeof parseHeader>;
  try {
    header = parseHeader(path, fd, stat.size);
  } finally {
    fs.closeSync(fd);
  }
  const { metadata, entries } = header;

  const entry = (name: string): Entry => {
    const e = entries.get(name);
    if (!e) {
      const names = [...entries.keys()];
      throw new Error(
        names.length
          ? `${path}: no tensor named ${name}; available: ${suggestNames(name, names)}`
          : `${path}: no tensor named ${name}; the file holds no tensors`,
      );
    }
    return e;
  };

  return {
    path,
    metadata,
    names: () => [...entries.keys()],
    has: (name) => entries.has(name),
    shape: (name) => [...entry(name).shape],
    dtype: (name) => entry(name).dtype,
    byteRange: (name) => ({ begin: entry(name).begin, byteLength: entry(name).byteLength }),
    read(name) {
      const e = entry(name);
      if (!Object.hasOwn(SUPPORTED, e.dtype))
        throw new Error(
          `${path}: tensor ${name} has dtype ${e.dtype}, which is not supported; supported dtypes: ${SUPPORTED_LIST}`,
        );
      const dtype = e.dtype as Dtype;
      const n = numel(e.shape);
      const data = new Float32Array(n);
      const fd = fs.openSync(path, 'r');
      try {
        if (dtype === 'F32') {
          readFully(fd, new Uint8Array(data.buffer), e.begin, path);
        } else {
          const bits = new Uint16Array(n);
          readFully(fd, new Uint8Array(bits.buffer), e.begin, path);
          if (dtype === 'F16') decodeF16(bits, data);
          else decodeBF16(bits, data);
        }
      } finally {
        fs.closeSync(fd);
      }
      return { dtype, shape: [...e.shape], data };
    },
  };
}

/** Reads every tensor (they must all have supported dtypes). */
export function readSafetensors(path: string): Map<string, TensorData> {
  const file = openSafetensors(path);
  return new Map(file.names().map((name) => [name, file.read(name)]));
}

/**
 * Writes tensors in the given order (dtype F32 unless given; F16 and BF16 round to nearest even).
 * Writes to a temporary file first and renames it, so a crash never leaves a half-written checkpoint.
 */
export function writeSafetensors(
  path: string,
  tensors: { name: string; shape: number[]; data: Float32Array; dtype?: Dtype }[],
  metadata?: Record<string, string>,
): void {
  assertLittleEndianHost();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    if (!t.name || t.name === '__metadata__')
      throw new Error(`${path}: invalid tensor name ${JSON.stringify(t.name)}`);
    if (t.name in header) throw new Error(`${path}: tensor ${t.name} given twice`);
    if (!Object.hasOwn(SUPPORTED, dtype))
      throw new Error(`${path}: cannot write dtype ${dtype}; writable dtypes: ${SUPPORTED_LIST}`);
    if (!t.shape.every((s) => Number.isSafeInteger(s) && s >= 0))
      throw new Error(`${path}: tensor ${t.name} has invalid shape ${JSON.stringify(t.shape)}`);
    if (numel(t.shape) !== t.data.length)
      throw new Error(
        `${path}: tensor ${t.name} has ${t.data.length} values but shape ${JSON.stringify(t.shape)} needs ${numel(t.shape)}`,
      );
    const bytes = t.data.length * SUPPORTED[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let headerText = JSON.stringify(header);
  let headerBytes = new TextEncoder().encode(headerText);
  // Pad with spaces so the data buffer starts 8-byte aligned.
  headerText += ' '.repeat((8 - (headerBytes.length % 8)) % 8);
  headerBytes = new TextEncoder().encode(headerText);
  const lenBytes = new Uint8Array(8);
  new DataView(lenBytes.buffer).setBigUint64(0, BigInt(headerBytes.length), true);

  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (e) {
    throw new Error(`${path}: cannot write (${(e as Error).message})`, { cause: e });
  }
  let ok = false;
  try {
    const write = (bytes: Uint8Array) => {
      for (let done = 0; done < bytes.length;) {
        done += fs.writeSync(fd, bytes, done, Math.min(READ_CHUNK, bytes.length - done));
      }
    };
    write(lenBytes);
    write(headerBytes);
    for (const t of tensors) {
      if ((t.dtype ?? 'F32') === 'F32') {
        write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      } else {
        const bits = new Uint16Array(t.data.length);
        if (t.dtype === 'BF16') encodeBF16(t.data, bits);
        else encodeF16(t.data, bits);
        write(new Uint8Array(bits.buffer));
      }
    }
    ok = true;
  } finally {
    fs.closeSync(fd);
    if (!ok) fs.rmSync(tmp, { force: true });
  }
  fs.renameSync(tmp, path);
}
