// Seeded mutations for the fuzz suite: byte-level (flips, truncation, length-field edits, spliced
// chunks) and JSON-level (values swapped for other types, huge or fractional numbers, deleted and
// prototype-named keys, deep nesting, repeated elements). Every choice comes from the Rng given,
// so an input is reproduced from its seed and index alone.

import { Rng } from '../../src/random.ts';

/** Values that break length fields and counts: 0, ±1, powers of two and the ends of each width. */
const EDGE_INTS = [
  0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
  0xffffffff,
];

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)];

/** One to `max` byte-level mutations of a copy of `data`. */
export function mutateBytes(rng: Rng, data: Uint8Array, max = 4): Uint8Array {
  let out: Uint8Array = data.slice();
  const rounds = 1 + rng.int(max);
  for (let r = 0; r < rounds; r++) {
    const at = out.length ? rng.int(out.length) : 0;
    switch (rng.int(9)) {
      case 0: // flip one bit
        if (out.length) out[at] ^= 1 << rng.int(8);
        break;
      case 1: // random byte
        if (out.length) out[at] = rng.int(256);
        break;
      case 2: // truncate
        out = out.slice(0, rng.int(out.length + 1));
        break;
      case 3: {
        // overwrite a little-endian length field with an edge value (u16, u32 or u64)
        const width = pick(rng, [2, 4, 8]);
        if (at + width > out.length) break;
        const v = new DataView(out.buffer, out.byteOffset + at, width);
        const value = pick(rng, EDGE_INTS) + pick(rng, [-1, 0, 0, 1]);
        if (width === 2) v.setUint16(0, value & 0xffff, true);
        else if (width === 4) v.setUint32(0, value >>> 0, true);
        else
          v.setBigUint64(
            0,
            BigInt.asUintN(64, BigInt(value) << BigInt(pick(rng, [0, 0, 32]))),
            true,
          );
        break;
      }
      case 4: {
        // delete a chunk
        const n = 1 + rng.int(16);
        out = concatBytes(out.subarray(0, at), out.subarray(Math.min(out.length, at + n)));
        break;
      }
      case 5: {
        // insert random bytes
        const n = 1 + rng.int(16);
        const extra = Uint8Array.from({ length: n }, () => rng.int(256));
        out = concatBytes(out.subarray(0, at), extra, out.subarray(at));
        break;
      }
      case 6: {
        // copy a chunk of the file over another place (duplicated headers, shifted records)
        const n = 1 + rng.int(64);
        const from = out.length ? rng.int(out.length) : 0;
        const chunk = out.slice(from, from + n);
        out.set(chunk.subarray(0, Math.max(0, out.length - at)), at);
        break;
      }
      case 7: // zero a run
        out.fill(0, at, at + 1 + rng.int(32));
        break;
      default: // 0xff run
        out.fill(0xff, at, at + 1 + rng.int(8));
    }
  }
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// Stand-ins replaced in the final text (JSON.stringify itself cannot write them).
const DEEP = '\u0000deep\u0000';
const HUGE_EXPONENT = '\u0000huge\u0000';

/** Every position in a JSON value: [parent, key] pairs (the root has no parent). */
function slots(
  value: Json,
  limit = 5000,
): { parent: Json[] | Record<string, Json>; key: string | number }[] {
  const out: { parent: Json[] | Record<string, Json>; key: string | number }[] = [];
  const stack: Json[] = [value];
  while (stack.length && out.length < limit) {
    const v = stack.pop()!;
    if (Array.isArray(v))
      v.forEach((x, i) => {
        out.push({ parent: v, key: i });
        stack.push(x);
      });
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        out.push({ parent: v, key: k });
        stack.push(x);
      }
  }
  return out;
}

function replacement(rng: Rng, doc: Json): Json {
  switch (rng.int(14)) {
    case 0:
      return null;
    case 1:
      return pick(rng, [true, false]);
    case 2:
      return pick(rng, [
        0,
        -1,
        1,
        0.5,
        -0.5,
        1.5,
        2 ** 31,
        2 ** 32,
        2 ** 53,
        2 ** 53 + 2,
        -(2 ** 53),
      ]);
    case 3:
      return pick(rng, [1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER, 1e21, 123456789012]);
    case 4:
      return HUGE_EXPONENT; // 1e999: JSON.parse makes it Infinity
    case 5:
      return pick(rng, [
        '',
        'x',
        'ε',
        '\u0000',
        '__proto__',
        'constructor',
        'resid_0',
        'F32',
        '../x',
      ]);
    case 6:
      return 'x'.repeat(1 + rng.int(5000));
    case 7:
      return [];
    case 8:
      return {};
    case 9:
      return DEEP;
    case 10:
      return { toString: 1, valueOf: 'x' } as unknown as Json;
    case 11:
      return Array.from({ length: 1 + rng.int(100) }, () => rng.int(1000));
    default: {
      // another value of the same document (a type swap that still looks plausible)
      const all = slots(doc);
      if (!all.length) return null;
      const s = pick(rng, all);
      return structuredClone((s.parent as Record<string, Json>)[s.key as string]);
    }
  }
}

/** One to `max` value-level mutations of a parsed JSON document, returned as text. */
export function mutateJson(rng: Rng, doc: unknown, max = 3): string {
  let root = structuredClone(doc) as Json;
  let depth = 0;
  const rounds = 1 + rng.int(max);
  for (let r = 0; r < rounds; r++) {
    const all = slots(root);
    const op = rng.int(10);
    if (!all.length || op === 0) {
      root = op === 0 && rng.int(4) === 0 ? replacement(rng, root) : root;
      continue;
    }
    const { parent, key } = pick(rng, all);
    const p = parent as Record<string | number, Json>;
    if (op <= 5) p[key] = replacement(rng, root);
    else if (op === 6) {
      // delete
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete p[key];
    } else if (op === 7 && !Array.isArray(parent)) {
      // a prototype-named key next to the real ones
      const name = pick(rng, ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']);
      Object.defineProperty(parent, name, {
        value: replacement(rng, root),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else if (op === 8 && Array.isArray(parent)) {
      // repeat an element many times
      const times = 1 + rng.int(200);
      parent.splice(
        key as number,
        0,
        ...Array.from({ length: times }, () => structuredClone(parent[key as number])),
      );
    } else p[key] = replacement(rng, root);
    depth = pick(rng, [100, 1000, 20_000]);
  }
  let text = JSON.stringify(root);
  text = text.split(JSON.stringify(DEEP)).join('['.repeat(depth) + ']'.repeat(depth));
  text = text.split(JSON.stringify(HUGE_EXPONENT)).join('1e999');
  return text;
}

/** A JSON document mutated at the value level, then sometimes at the byte level too. */
export function mutateJsonText(rng: Rng, doc: unknown): Uint8Array {
  const text = new TextEncoder().encode(mutateJson(rng, doc));
  return rng.int(4) === 0 ? mutateBytes(rng, text, 2) : text;
}
