// State dicts written by torch.save (the zip format of PyTorch >= 1.6): a zip archive holding
// `<name>/data.pkl` (the pickled dict, tensors as persistent references to storages) and
// `<name>/data/<key>` (each storage's raw little-endian bytes). The pickle is read as data by
// ./pickle.ts, the zip by ./zip.ts; tensors are gathered from their storages by offset and strides into row-major f32.

import fs from 'node:fs';
import { decodeBF16, decodeF16 } from '../io/float16.ts';
import { readTransposedF32, transpose } from './transpose.ts';
import { openZip } from './zip.ts';
import {
  describePyValue,
  isDict,
  isTensorRef,
  isTuple,
  readPickle,
  storageDtype,
  type PyValue,
  type StorageRef,
  type TensorRef,
} from './pickle.ts';

export interface TorchTensor {
  /** dtype of the storage on disk; data is always converted to f32. */
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  data: Float32Array; // row-major (contiguous), whatever the strides on disk
}

const BYTES: Record<StorageRef['dtype'], number> = { F32: 4, F16: 2, BF16: 2 };

/** Refuses what is not a zip before parsing it, naming the legacy pickle format when it sees one. */
function checkMagic(path: string): void {
  let head: Uint8Array;
  try {
    const fd = fs.openSync(path, 'r');
    try {
      head = new Uint8Array(4);
      head = head.subarray(0, fs.readSync(fd, head, 0, 4, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  const isZip =
    head.length === 4 &&
    head[0] === 0x50 &&
    head[1] === 0x4b &&
    head[2] === 0x03 &&
    head[3] === 0x04;
  if (isZip) return;
  const isPickle = head.length >= 2 && head[0] === 0x80 && head[1] <= 5;
  throw new Error(
    isPickle
      ? `${path}: a bare pickle stream (the legacy pre-1.6 torch.save format), which is not supported; re-save it with torch >= 1.6 (torch.save(torch.load(f), f))`
      : `${path}: not a torch.save checkpoint (expected a zip archive; the file starts with bytes ${[...head].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`,
  );
}

function isContiguous(t: TensorRef): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

/**
 * The view's element count, after checking that it reads only elements its storage holds: the
 * count itself is at most the storage's (so a few pickle bytes cannot ask for gigabytes), no
 * dimension of size > 1 has stride 0 (a broadcast view would copy one element many times), and
 * the last element it reaches, offset + Σ (size_i - 1)·stride_i, is inside the storage.
 */
function checkedViewSize(t: TensorRef, where: string): number {
  const { shape, stride, offset } = t;
  const available = t.storage.numel;
  const view = () => `view (offset ${offset}, size [${shape}], stride [${stride}])`;
  let n = 1;
  for (const s of shape) n *= s;
  if (n === 0) return 0;
  if (n > available)
    throw new Error(
      `${where}: ${view()} has ${n} elements but its storage holds ${available}; corrupt or hostile file`,
    );
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] > 1 && stride[i] === 0)
      throw new Error(
        `${where}: ${view()} repeats elements (stride 0), which is not supported; save the tensor with .contiguous()`,
      );
    last += (shape[i] - 1) * stride[i];
  }
  if (!Number.isSafeInteger(last) || last >= available)
    throw new Error(
      `${where}: ${view()} reaches element ${last} but its storage holds ${available}`,
    );
  return n;
}

/** A row-major view into the storage (no copy); checked by checkedViewSize. */
function gatherContiguous(t: TensorRef, storage: Float32Array, n: number): Float32Array {
  return storage.subarray(t.offset, t.offset + n);
}

/** Row-major f32 copy of a (possibly strided, offset) view into a storage; checked by checkedViewSize. */
function gather(t: TensorRef, storage: Float32Array, n: number): Float32Array {
  const { shape, stride, offset } = t;
  const out = new Float32Array(n);
  if (n === 0) return out;
  const dims = shape.length;
  const index = new Array<number>(dims).fill(0);
  let src = offset;
  for (let o = 0; o < n; o++) {
    out[o] = storage[src];
    // Odometer over the multi-index, innermost dimension fastest.
    for (let k = dims - 1; k >= 0; k--) {
      index[k]++;
      src += stride[k];
      if (index[k] < shape[k]) break;
      src -= shape[k] * stride[k];
      index[k] = 0;
    }
  }
  return out;
}

// Tensors may share storages (views, tied weights), but together they hold at most this many
// times the elements of the storages in the archive: a pickle naming one storage in thousands of
// tensors is refused instead of copied thousands of times.
const MAX_ELEMENTS_PER_STORED_ELEMENT = 2;

/**
 * Reads a torch.save'd dict of tensors (e.g. a module's state_dict()) without executing anything.
 * Refuses non-zip files, corrupt zips, truncated pickles and pickles naming any global outside the
 * allowlist, each with an error naming `path`.
 */
export function readTorchStateDict(
  path: string,
  options: {
    /**
     * 2-D tensors to return transposed (shape [cols, rows], row-major). One that is the whole of
     * a stored F32 storage no other tensor uses streams from the file into its transposed array.
     */
    transposed?: ReadonlySet<string>;
  } = {},
): Map<string, TorchTensor> {
  checkMagic(path);
  const zip = openZip(path);
  const pickles = zip.names().filter((name) => name === 'data.pkl' || name.endsWith('/data.pkl'));
  if (pickles.length !== 1)
    throw new Error(
      `${path}: expected exactly one data.pkl in the archive (torch.save layout), found ${pickles.length}: ${zip.names().slice(0, 8).join(', ')}`,
    );
  const pklName = pickles[0];
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const order = zip.has(`${prefix}byteorder`) ? zip.read(`${prefix}byteorder`) : undefined;
  if (order && new TextDecoder().decode(order).trim() !== 'little')
    throw new Error(
      `${path}: storages are big-endian (${prefix}byteorder); only little-endian is supported`,
    );

  const where = `${path}: ${pklName}`;
  const storages = new Map<string, StorageRef>();
  const records = new Map<string, string>(); // storage key -> archive record
  const persistentLoad = (pid: PyValue): PyValue => {
    // ('storage', storage type, key, location, numel)
    if (!isTuple(pid) || pid.items.length < 5 || pid.items[0] !== 'storage')
      throw new Error(
        `${where}: persistent id is ${describePyValue(pid)}, expected ('storage', type, key, location, numel)`,
      );
    const [, type, key, , numel] = pid.items;
    const dtype = storageDtype(type);
    if (!dtype)
      throw new Error(
        `${where}: persistent id names ${describePyValue(type)}, expected a storage type`,
      );
    if (typeof key !== 'string')
      throw new Error(`${where}: storage key ${String(key)} is not a string`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
      throw new Error(`${where}: storage ${key} has element count ${String(numel)}`);
    const cached = storages.get(key);
    if (cached) return cached;
    const record = `${prefix}data/${key}`;
    if (!zip.has(record))
      throw new Error(
        `${path}: the pickle refers to storage ${key} but the archive has no ${record}`,
      );
    const size = zip.size(record);
    if (size < numel * BYTES[dtype])
      throw new Error(
        `${path}: ${record} holds ${size} bytes but ${numel} ${dtype} elements need ${numel * BYTES[dtype]}`,
      );
    // Read (and CRC-checked) when first decoded: a storage streamed into a transposed tensor
    // (options.transposed) is never held whole.
    let bytes: Uint8Array | undefined;
    const ref: StorageRef = {
      kind: 'storage',
      key,
      dtype,
      numel,
      get bytes() {
        return (bytes ??= zip.read(record));
      },
    };
    storages.set(key, ref);
    records.set(key, record);
    return ref;
  };

  const root = readPickle(zip.read(pklName), where, persistentLoad);
  if (!isDict(root))
    throw new Error(
      `${where}: holds a ${describePyValue(root)}, expected a dict of tensors (a state_dict)`,
    );

  // Decode each storage once to f32 (tensors may share one). A storage used by a single
  // contiguous tensor is handed out as a view, so a 32768x512 dictionary is not copied twice.
  const users = new Map<string, number>();
  for (const value of root.entries.values())
    if (isTensorRef(value)) users.set(value.storage.key, (users.get(value.storage.key) ?? 0) + 1);
  const decoded = new Map<string, Float32Array>();
  const storageF32 = (s: StorageRef): Float32Array => {
    let out = decoded.get(s.key);
    if (!out) {
      if (s.dtype === 'F32' && s.bytes.byteOffset % 4 === 0) {
        out = new Float32Array(s.bytes.buffer, s.bytes.byteOffset, s.numel);
      } else if (s.dtype === 'F32') {
        out = new Float32Array(s.numel);
        new Uint8Array(out.buffer).set(s.bytes.subarray(0, s.numel * 4));
      } else {
        out = new Float32Array(s.numel);
        const bits = new Uint16Array(s.numel);
        new Uint8Array(bits.buffer).set(s.bytes.subarray(0, s.numel * 2));
        if (s.dtype === 'F16') decodeF16(bits, out);
        else decodeBF16(bits, out);
      }
      decoded.set(s.key, out);
    }
    return out;
  };

  // Check every view before decoding or copying anything.
  const sizes = new Map<TensorRef, number>();
  let stored = 0;
  for (const s of storages.values()) stored += s.numel;
  let total = 0;
  for (const [name, value] of root.entries) {
    if (!isTensorRef(value)) continue;
    const n = checkedViewSize(value, `${path}: tensor ${String(name)}`);
    sizes.set(value, n);
    total += n;
  }
  if (total > MAX_ELEMENTS_PER_STORED_ELEMENT * stored)
    throw new Error(
      `${where}: its tensors hold ${total} elements in all but the archive stores only ${stored}; corrupt or hostile file`,
    );

  const tensors = new Map<string, TorchTensor>();
  for (const [name, value] of root.entries) {
    if (!isTensorRef(value)) continue; // e.g. non-tensor extras; callers check for what they need
    const key = String(name);
    const n = sizes.get(value)!;
    if (options.transposed?.has(key)) {
      if (value.shape.length !== 2)
        throw new Error(
          `${path}: tensor ${key} has shape [${value.shape}], expected 2 dimensions to transpose`,
        );
      const [rows, cols] = value.shape;
      const s = value.storage;
      const record = records.get(s.key)!;
      const range = zip.storedRange(record);
      const whole =
        s.dtype === 'F32' &&
        users.get(s.key) === 1 &&
        isContiguous(value) &&
        value.offset === 0 &&
        n === s.numel &&
        range?.size === n * 4;
      const data = whole
        ? readTransposedF32(path, range.start, rows, cols, undefined, {
            prefix: new Uint8Array(0),
            expected: range.crc,
            what: record,
          })
        : transpose(gather(value, storageF32(s), n), rows, cols);
      tensors.set(key, { dtype: s.dtype, shape: [cols, rows], data });
      continue;
    }
    const storage = storageF32(value.storage);
    const data =
      users.get(value.storage.key) === 1 && isContiguous(value)
        ? gatherContiguous(value, storage, n)
        : gather(value, storage, n);
    tensors.set(key, { dtype: value.storage.dtype, shape: [...value.shape], data });
  }
  return tensors;
}
