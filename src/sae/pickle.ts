// A pickle reader that treats the stream as DATA: it interprets only the opcodes torch.save emits
// for a state dict (protocols 2-5) and resolves only an allowlist of globals
// (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, and the float
// storage types). Anything else — os.system, builtins.eval, an unknown class — is refused before
// it is ever called, with an error naming it. Nothing from the stream is ever executed.

/** A storage record that torch.save keeps next to the pickle (resolved by the caller). */
export interface StorageRef {
  kind: 'storage';
  key: string;
  dtype: StorageDtype;
  /** Number of elements the pickle says the storage holds. */
  numel: number;
  /** Raw little-endian bytes of the storage. */
  bytes: Uint8Array;
}

export type StorageDtype = 'F32' | 'F16' | 'BF16';

/** A tensor view: `shape` elements gathered from `storage` at offset + Σ index_i·stride_i. */
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

export interface PyTuple {
  kind: 'tuple';
  items: PyValue[];
}

/** dict or OrderedDict; keys are strings or numbers (all torch state dicts need). */
export interface PyDict {
  kind: 'dict';
  entries: Map<string | number, PyValue>;
  /** State given by BUILD (an OrderedDict's __dict__, e.g. state_dict()._metadata); unused. */
  attributes?: PyValue;
}

interface PyGlobal {
  kind: 'global';
  name: AllowedGlobal;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PyGlobal
  | StorageRef
  | TensorRef;

const STORAGE_TYPES: Record<string, StorageDtype> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
};

const ALLOWED_GLOBALS = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_TYPES),
] as const;
type AllowedGlobal = (typeof ALLOWED_GLOBALS)[number];

/** Resolves a BINPERSID record; torch's is ('storage', storage type, key, location, numel). */
export type PersistentLoad = (pid: PyValue) => PyValue;

const MARK = Symbol('mark');
type StackItem = PyValue | typeof MARK;

function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return v.kind === 'global' ? v.name : v.kind;
  return typeof v;
}

/** The `kind` tag of a structured value (tuple, dict, global, storage, tensor), else undefined. */
function kindOf(v: PyValue): string | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'kind' in v
    ? v.kind
    : undefined;
}

function isTuple(v: PyValue): v is PyTuple {
  return kindOf(v) === 'tuple';
}

function intList(v: PyValue, what: string): number[] {
  if (!isTuple(v) && !Array.isArray(v))
    throw new Error(`${what} is ${describe(v)}, expected a tuple`);
  const items = isTuple(v) ? v.items : v;
  return items.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      throw new Error(`${what} holds ${String(x)}, expected non-negative integers`);
    return x;
  });
}

/**
 * Interprets `data` (the bytes of a pickle) and returns the object it describes.
 * `where` names the stream in errors (e.g. "ae.pt: archive/data.pkl").
 */
export function readPickle(
  data: Uint8Array,
  where: string,
  persistentLoad: PersistentLoad,
): PyValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;

  const fail = (why: string, at = pos): never => {
    throw new Error(`${where}: ${why} (at byte ${at})`);
  };
  const need = (n: number) => {
    if (pos + n > data.length)
      fail(
        `pickle ends early: needs ${n} more bytes but the stream has ${data.length - pos}; truncated file?`,
      );
  };
  const u8 = () => {
    need(1);
    return data[pos++];
  };
  const u16 = () => {
    need(2);
    pos += 2;
    return view.getUint16(pos - 2, true);
  };
  const i32 = () => {
    need(4);
    pos += 4;
    return view.getInt32(pos - 4, true);
  };
  const u32 = () => {
    need(4);
    pos += 4;
    return view.getUint32(pos - 4, true);
  };
  const u64 = () => {
    need(8);
    pos += 8;
    const n = view.getBigUint64(pos - 8, true);
    if (n > BigInt(data.length)) fail(`length ${n} is larger than the whole stream`);
    return Number(n);
  };
  const bytes = (n: number) => {
    need(n);
    pos += n;
    return data.subarray(pos - n, pos);
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('pickle ends early inside a GLOBAL name; truncated file?');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const text = (n: number) => {
    const raw = bytes(n);
    try {
      return utf8.decode(raw);
    } catch {
      return fail('a string is not valid UTF-8');
    }
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined) fail('pickle stack underflow; corrupt stream');
    if (v === MARK) fail('unexpected MARK on the stack; corrupt stream');
    return v as PyValue;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail('pickle stack underflow; corrupt stream');
    return v as PyValue;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK to pop to; corrupt stream');
    const items = stack.splice(m!) as StackItem[];
    items.shift(); // the MARK itself
    return items as PyValue[];
  };
  const global = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    if (module === 'torch' && name.endsWith('Storage') && !(full in STORAGE_TYPES))
      fail(
        `tensor storage type ${full} is not supported; supported: ${Object.keys(STORAGE_TYPES).join(', ')}`,
      );
    if (!(ALLOWED_GLOBALS as readonly string[]).includes(full))
      fail(
        `refusing to load: the pickle refers to the global ${full}, which is not allowed ` +
          `(a tensor checkpoint may only use ${ALLOWED_GLOBALS.join(', ')}). ` +
          'Pickles can run code when loaded; this file is either not a plain state dict or hostile',
      );
    return { kind: 'global', name: full as AllowedGlobal };
  };
  const setItem = (target: PyValue, key: PyValue, value: PyValue) => {
    if (kindOf(target) !== 'dict') fail(`SETITEM on ${describe(target)}, expected a dict`);
    if (typeof key !== 'string' && typeof key !== 'number')
      fail(`dict key of type ${describe(key)} is not supported`);
    (target as PyDict).entries.set(key as string | number, value);
  };
  const append = (target: PyValue, items: PyValue[]) => {
    if (!Array.isArray(target)) fail(`APPEND on ${describe(target)}, expected a list`);
    // One at a time: spreading a long list into push() overflows the call stack.
    for (const item of items) (target as PyValue[]).push(item);
  };
  const reduce = (fn: PyValue, args: PyValue): PyValue => {
    if (kindOf(fn) !== 'global') fail(`REDUCE calls ${describe(fn)}, expected an allowed global`);
    if (!isTuple(args)) fail(`REDUCE arguments are ${describe(args)}, expected a tuple`);
    const a = (args as PyTuple).items;
    switch ((fn as PyGlobal).name) {
      case 'collections.OrderedDict':
        if (a.length !== 0) fail('OrderedDict with constructor arguments is not supported');
        return { kind: 'dict', entries: new Map() };
      case 'torch._utils._rebuild_tensor_v2': {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.length < 4) fail(`_rebuild_tensor_v2 got ${a.length} arguments, expected at least 4`);
        const storage = a[0];
        if (kindOf(storage) !== 'storage')
          fail(`_rebuild_tensor_v2: first argument is ${describe(storage)}, expected a storage`);
        const offset = a[1];
        if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0)
          fail(
            `_rebuild_tensor_v2: storage offset ${String(offset)} is not a non-negative integer`,
          );
        let shape: number[] = [];
        let stride: number[] = [];
        try {
          shape = intList(a[2], 'tensor size');
          stride = intList(a[3], 'tensor stride');
        } catch (e) {
          fail(`_rebuild_tensor_v2: ${(e as Error).message}`);
        }
        if (shape.length !== stride.length)
          fail(`_rebuild_tensor_v2: size has ${shape.length} dims but stride ${stride.length}`);
        return {
          kind: 'tensor',
          storage: storage as StorageRef,
          offset: offset as number,
          shape,
          stride,
        };
      }
      case 'torch._utils._rebuild_parameter': {
        // (data, requires_grad, backward_hooks): a Parameter is its tensor for us.
        const t = a[0];
        if (kindOf(t) !== 'tensor')
          fail(`_rebuild_parameter: first argument is ${describe(t)}, expected a tensor`);
        return t;
      }
      default:
        return fail(`${(fn as PyGlobal).name} cannot be called`);
    }
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME (a length hint only)
        u64();
        break;
      case 0x2e: {
        // STOP
        const result = pop();
        return result;
      }
      case 0x28: // MARK
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push({ kind: 'dict', entries: new Map() });
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d: PyDict = { kind: 'dict', entries: new Map() };
        for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push({ kind: 'tuple', items: [] });
        break;
      case 0x74: // TUPLE
        stack.push({ kind: 'tuple', items: popMark() });
        break;
      case 0x85: // TUPLE1
        stack.push({ kind: 'tuple', items: [pop()] });
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push({ kind: 'tuple', items: [pop(), b] });
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push({ kind: 'tuple', items: [pop(), b, c] });
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItem(top(), key, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const target = top();
        for (let i = 0; i < items.length; i += 2) setItem(target, items[i], items[i + 1]);
        break;
      }
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes
        const n = u8();
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
            ? Number(v)
            : v,
        );
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x47: // BINFLOAT (big-endian f64)
        need(8);
        pos += 8;
        stack.push(view.getFloat64(pos - 8, false));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytes(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(latin1.decode(bytes(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) fail(`memo entry ${index} was never stored; corrupt stream`);
        stack.push(memo.get(index)!);
        break;
      }
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          fail('STACK_GLOBAL needs two strings');
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(reduce(fn, args));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x62: {
        // BUILD: only an OrderedDict's attribute dict (torch stores state_dict()._metadata there)
        const state = pop();
        const target = top();
        if (kindOf(target) !== 'dict') fail(`BUILD on ${describe(target)} is not supported`);
        (target as PyDict).attributes = state;
        break;
      }
      case 0x30: // POP
        if (stack.pop() === MARK) marks.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default: {
        const name = REFUSED[op];
        fail(
          name
            ? `refusing to load: pickle opcode ${name} is not used by torch.save state dicts and is not supported`
            : `unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}; not a pickle, or corrupt`,
          at,
        );
      }
    }
  }
}

// Opcodes that exist but that a state dict never needs (object construction, extension registry, text protocol 0).
const REFUSED: Record<number, string> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x50: 'PERSID',
  0x49: 'INT',
  0x4c: 'LONG',
  0x8b: 'LONG4',
  0x53: 'STRING',
  0x56: 'UNICODE',
  0x46: 'FLOAT',
  0x67: 'GET',
  0x70: 'PUT',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

/** Storage dtype of an allowed storage-type global, or undefined. */
export function storageDtype(v: PyValue): StorageDtype | undefined {
  return kindOf(v) === 'global' ? STORAGE_TYPES[(v as PyGlobal).name] : undefined;
}

export function isTensorRef(v: PyValue): v is TensorRef {
  return kindOf(v) === 'tensor';
}

export function isDict(v: PyValue): v is PyDict {
  return kindOf(v) === 'dict';
}

export { isTuple, describe as describePyValue };
