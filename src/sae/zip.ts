// A small, strict zip reader for torch.save archives (PKWARE APPNOTE: end-of-central-directory
// record, optional zip64 records, central directory, local headers). Records are read one at a
// time at their offsets, so a 130 MB checkpoint is never held twice, and every signature, size and
// CRC-32 is checked: a damaged or truncated file fails here instead of yielding wrong numbers.
// Stored records (what torch.save writes) are returned as-is; deflated ones go through node:zlib
// with an output limit equal to the size the directory declares, and a declared size beyond what
// deflate can produce from the compressed bytes is refused before inflating (no deflate bombs).

import buffer from 'node:buffer';
import fs from 'node:fs';
import zlib from 'node:zlib';

interface Entry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export interface ZipArchive {
  readonly path: string;
  names(): string[];
  has(name: string): boolean;
  /** The record's uncompressed size as the central directory declares it (read checks it). */
  size(name: string): number;
  /** The record's bytes (a fresh, 8-byte aligned buffer), after checking its CRC-32. */
  read(name: string): Uint8Array;
  /**
   * Up to `length` bytes from the start of the record, without reading the rest (so without a
   * CRC check): for peeking at a header. Deflated records inflate only a prefix.
   */
  readPrefix(name: string, length: number): Uint8Array;
  /**
   * Where a stored (uncompressed) record's bytes lie in the file, for readers that stream them
   * into their final arrays; they must check `crc` (zlib.crc32 over the bytes) themselves.
   * Undefined for compressed records.
   */
  storedRange(name: string): { start: number; size: number; crc: number } | undefined;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;
// Deflate emits at most 258 bytes per 2-bit code of a fixed block, so a record inflates at most
// ~1032x (zlib's documented limit); a slack covers tiny records.
const MAX_DEFLATE_RATIO = 1032;
const DEFLATE_SLACK = 1024;

function readAt(fd: number, position: number, length: number, path: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0)
      throw new Error(
        `${path}: corrupt or truncated zip archive (file ends at byte ${position + done})`,
      );
    done += n;
  }
  return out;
}

/** Parses the central directory of the zip at `path`; records are read on demand. */
export function openZip(path: string): ZipArchive {
  const corrupt = (why: string): never => {
    throw new Error(`${path}: corrupt or truncated zip archive (${why})`);
  };
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  const entries = new Map<string, Entry>();
  let fileSize = 0;
  try {
    fileSize = fs.fstatSync(fd).size;
    // The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB, at the end.
    const tailLength = Math.min(fileSize, 22 + MAX_COMMENT + 20);
    const tailStart = fileSize - tailLength;
    const tail = readAt(fd, tailStart, tailLength, path);
    const tv = new DataView(tail.buffer);
    let e = tail.length - 22;
    while (e >= 0 && tv.getUint32(e, true) !== EOCD) e--;
    if (e < 0) corrupt('no end-of-central-directory record; the end of the file is missing');
    let count = tv.getUint16(e + 10, true);
    let cdSize = tv.getUint32(e + 12, true);
    let cdOffset = tv.getUint32(e + 16, true);
    if (e >= 20 && tv.getUint32(e - 20, true) === ZIP64_LOCATOR) {
      const z64 = Number(tv.getBigUint64(e - 20 + 8, true));
      if (z64 + 56 > fileSize) corrupt('zip64 record points past the end of the file');
      const rec = new DataView(readAt(fd, z64, 56, path).buffer);
      if (rec.getUint32(0, true) !== ZIP64_EOCD)
        corrupt('bad zip64 end-of-central-directory signature');
      count = Number(rec.getBigUint64(32, true));
      cdSize = Number(rec.getBigUint64(40, true));
      cdOffset = Number(rec.getBigUint64(48, true));
    }
    if (cdOffset + cdSize > fileSize) corrupt('central directory points past the end of the file');
    const cd = readAt(fd, cdOffset, cdSize, path);
    const v = new DataView(cd.buffer);
    const utf8 = new TextDecoder('utf-8', { fatal: false });
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || v.getUint32(p, true) !== CENTRAL)
        corrupt(`central directory entry ${i} has a bad signature`);
      const flags = v.getUint16(p + 8, true);
      const method = v.getUint16(p + 10, true);
      const crc = v.getUint32(p + 16, true);
      let compressedSize = v.getUint32(p + 20, true);
      let size = v.getUint32(p + 24, true);
      const nameLength = v.getUint16(p + 28, true);
      const extraLength = v.getUint16(p + 30, true);
      const commentLength = v.getUint16(p + 32, true);
      let localHeaderOffset = v.getUint32(p + 42, true);
      const end = p + 46 + nameLength + extraLength + commentLength;
      if (end > cd.length) corrupt(`central directory entry ${i} runs past the directory`);
      const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLength));
      // zip64 extended information: 8-byte values for exactly the fields saturated above.
      for (let x = p + 46 + nameLength; x + 4 <= p + 46 + nameLength + extraLength;) {
        const id = v.getUint16(x, true);
        const len = v.getUint16(x + 2, true);
        if (id === 0x0001) {
          let q = x + 4;
          const next = () => {
            if (q + 8 > x + 4 + len || q + 8 > end)
              corrupt(`record ${name}: zip64 extra field is shorter than the sizes it must hold`);
            const n = Number(v.getBigUint64(q, true));
            q += 8;
            return n;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        x += 4 + len;
      }
      if (flags & 1)
        throw new Error(`${path}: record ${name} is encrypted, which is not supported`);
      if (localHeaderOffset + 30 + compressedSize > fileSize)
        corrupt(`record ${name} runs past the end of the file`);
      if (method === 0 && size !== compressedSize)
        corrupt(`stored record ${name} is ${compressedSize} bytes but declares ${size}`);
      if (size > compressedSize * MAX_DEFLATE_RATIO + DEFLATE_SLACK || size > buffer.kMaxLength)
        corrupt(
          `record ${name} declares ${size} bytes from ${compressedSize} compressed, more than deflate can produce`,
        );
      entries.set(name, { name, method, flags, crc, compressedSize, size, localHeaderOffset });
      p = end;
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);

  const entry = (name: string): Entry => {
    const e = entries.get(name);
    if (!e) throw new Error(`${path}: the archive has no record ${name}`);
    if (e.method !== 0 && e.method !== 8)
      throw new Error(
        `${path}: record ${name} uses compression method ${e.method}; only stored (0) and deflate (8) are supported`,
      );
    return e;
  };
  /** Where the record's bytes start: after its local header, whose lengths may differ from the directory's. */
  const dataStart = (fd: number, e: Entry): number => {
    const header = new DataView(readAt(fd, e.localHeaderOffset, 30, path).buffer);
    if (header.getUint32(0, true) !== LOCAL)
      corrupt(`record ${e.name} has a bad local header signature`);
    const start =
      e.localHeaderOffset + 30 + header.getUint16(26, true) + header.getUint16(28, true);
    if (start + e.compressedSize > fileSize)
      corrupt(`record ${e.name} runs past the end of the file`);
    return start;
  };
  return {
    path,
    names: () => [...entries.keys()],
    has: (name) => entries.has(name),
    size: (name) => entry(name).size,
    read(name) {
      const e = entry(name);
      const fd = fs.openSync(path, 'r');
      try {
        const raw = readAt(fd, dataStart(fd, e), e.compressedSize, path);
        let data: Uint8Array;
        if (e.method === 0) data = raw;
        else {
          try {
            // Stops with an error as soon as the output exceeds the declared size.
            const inflated = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
            data = new Uint8Array(inflated.length);
            data.set(inflated);
          } catch (err) {
            return corrupt(`record ${name} does not inflate: ${(err as Error).message}`);
          }
        }
        if (data.length !== e.size)
          corrupt(`record ${name} holds ${data.length} bytes, the directory says ${e.size}`);
        if (zlib.crc32(data) >>> 0 !== e.crc >>> 0)
          corrupt(`record ${name} fails its CRC-32 check`);
        return data;
      } finally {
        fs.closeSync(fd);
      }
    },
    storedRange(name) {
      const e = entry(name);
      if (e.method !== 0) return undefined;
      const fd = fs.openSync(path, 'r');
      try {
        return { start: dataStart(fd, e), size: e.size, crc: e.crc >>> 0 };
      } finally {
        fs.closeSync(fd);
      }
    },
    readPrefix(name, length) {
      const e = entry(name);
      const fd = fs.openSync(path, 'r');
      try {
        const start = dataStart(fd, e);
        if (e.method === 0) return readAt(fd, start, Math.min(length, e.size), path);
        // length + slack compressed bytes hold at least length bytes; they inflate to at most
        // MAX_DEFLATE_RATIO times as many.
        const take = Math.min(e.compressedSize, length + DEFLATE_SLACK); // deflate barely expands
        const raw = readAt(fd, start, take, path);
        try {
          const inflated = zlib.inflateRawSync(raw, {
            finishFlush: zlib.constants.Z_SYNC_FLUSH,
            maxOutputLength: take * MAX_DEFLATE_RATIO + DEFLATE_SLACK,
          });
          return new Uint8Array(inflated.subarray(0, Math.min(length, e.size)));
        } catch (err) {
          return corrupt(`record ${name} does not inflate: ${(err as Error).message}`);
        }
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}
