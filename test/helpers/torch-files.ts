// Hand-built torch.save archives for hostile-input tests and the fuzzer: a minimal zip writer
// (stored or deflated records, with sizes that can lie) and a pickle of a state dict whose
// tensor views (offset, size, stride) and storages are whatever the test says.

import zlib from 'node:zlib';

export interface ZipRecord {
  name: string;
  data: Uint8Array;
  /** 0 stored (torch.save's choice), 8 deflate. */
  method?: 0 | 8;
  /** The uncompressed size written in the headers; default the true size. */
  declaredSize?: number;
}

/** A zip archive holding `records` (local headers, data, central directory, end record). */
export function buildZip(records: ZipRecord[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const r of records) {
    const name = new TextEncoder().encode(r.name);
    const method = r.method ?? 0;
    const body = method === 8 ? new Uint8Array(zlib.deflateRawSync(r.data)) : r.data;
    const size = r.declaredSize ?? r.data.length;
    const crc = zlib.crc32(r.data) >>> 0;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(8, method, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, body.length, true);
    local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true);
    entry.setUint16(4, 20, true);
    entry.setUint16(6, 20, true);
    entry.setUint16(10, method, true);
    entry.setUint32(16, crc, true);
    entry.setUint32(20, body.length, true);
    entry.setUint32(24, size, true);
    entry.setUint16(28, name.length, true);
    entry.setUint32(42, offset, true);
    parts.push(new Uint8Array(local.buffer), name, body);
    central.push(new Uint8Array(entry.buffer), name);
    offset += 30 + name.length + body.length;
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, records.length, true);
  end.setUint16(10, records.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  return concat([...parts, ...central, new Uint8Array(end.buffer)]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface PickledTensor {
  name: string;
  storage: string; // key of archive/data/<key>
  storageType?: 'FloatStorage' | 'HalfStorage' | 'BFloat16Storage';
  /** Element count the pickle claims for the storage. */
  numel: number;
  offset?: number;
  shape: number[];
  /** Default row-major. */
  stride?: number[];
}

const rowMajor = (shape: number[]) => {
  const stride = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) stride[i] = stride[i + 1] * shape[i + 1];
  return stride;
};

/** Protocol-2 pickle of an OrderedDict of tensors, as torch.save writes a state dict. */
export function statePickle(tensors: PickledTensor[]): Uint8Array {
  const out: number[] = [];
  const bytes = (...b: number[]) => out.push(...b);
  const text = (s: string) => {
    const b = new TextEncoder().encode(s);
    bytes(0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, b.length >>> 24);
    bytes(...b);
  };
  const int = (n: number) => {
    const v = new DataView(new ArrayBuffer(4));
    v.setInt32(0, n, true);
    bytes(0x4a, ...new Uint8Array(v.buffer));
  };
  const global = (module: string, name: string) =>
    bytes(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  const tuple = (items: number[]) => {
    bytes(0x28);
    items.forEach(int);
    bytes(0x74);
  };
  const orderedDict = () => {
    global('collections', 'OrderedDict');
    bytes(0x29, 0x52); // EMPTY_TUPLE, REDUCE
  };
  bytes(0x80, 2);
  orderedDict();
  bytes(0x28); // MARK for SETITEMS
  for (const t of tensors) {
    text(t.name);
    global('torch._utils', '_rebuild_tensor_v2');
    bytes(0x28); // MARK: the arguments
    bytes(0x28); // MARK: the persistent id
    text('storage');
    global('torch', t.storageType ?? 'FloatStorage');
    text(t.storage);
    text('cpu');
    int(t.numel);
    bytes(0x74, 0x51); // TUPLE, BINPERSID
    int(t.offset ?? 0);
    tuple(t.shape);
    tuple(t.stride ?? rowMajor(t.shape));
    bytes(0x89); // NEWFALSE (requires_grad)
    orderedDict(); // backward hooks
    bytes(0x74, 0x52); // TUPLE, REDUCE
  }
  bytes(0x75, 0x2e); // SETITEMS, STOP
  return Uint8Array.from(out);
}

/** A torch.save archive: archive/data.pkl, archive/byteorder and archive/data/<key> records. */
export function buildTorchArchive(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: { method?: 0 | 8; declaredSize?: (key: string) => number | undefined } = {},
): Uint8Array {
  return buildZip([
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/byteorder', data: new TextEncoder().encode('little') },
    ...Object.entries(storages).map(([key, data]) => ({
      name: `archive/data/${key}`,
      data,
      method: options.method,
      declaredSize: options.declaredSize?.(key),
    })),
  ]);
}

/** f32 little-endian bytes of `values`. */
export function f32Bytes(values: ArrayLike<number>): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}
