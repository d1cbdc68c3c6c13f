// .npy / .npz reading against files numpy wrote (scripts/make-npy-fixtures.py), and the refusals:
// object arrays, Fortran order, other dtypes, truncated data and damaged headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { npyHeaderBytes, openNpz, readNpy, readNpyFile, writeNpz } from '../../src/sae/npy.ts';
import { buildZip, concat } from '../helpers/torch-files.ts';

const FIX = path.join(import.meta.dirname, '..', 'fixtures', 'sae', 'npy');
const BASE = [-1, -0.5, 0, 0.5, 1, 1.5]; // 0.5 * arange(6) - 1, exact in every float dtype
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-npy-'));
const file = (name: string) => path.join(FIX, name);

test('numpy-written <f4, <f2, <f8 and version 2 arrays read as float32 with their shapes', () => {
  for (const name of ['f4.npy', 'f2.npy', 'f8.npy', 'v2.npy']) {
    const a = readNpyFile(file(name));
    assert.deepEqual(a.shape, [2, 3], name);
    assert.deepEqual([...a.data], BASE, name);
    assert.ok(a.data instanceof Float32Array);
  }
  assert.equal(readNpyFile(file('f2.npy')).dtype, '<f2');
  const scalar = readNpyFile(file('scalar.npy'));
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual([...scalar.data], [2.5]);
  const empty = readNpyFile(file('empty.npy'));
  assert.deepEqual(empty.shape, [0, 4]);
  assert.equal(empty.data.length, 0);
});

test('an aligned <f4 array is a view of the bytes read, not a copy', () => {
  const bytes = new Uint8Array(fs.readFileSync(file('f4.npy')));
  const a = readNpy(bytes, 'f4.npy');
  assert.equal(a.data.buffer, bytes.buffer);
});

test('refuses object arrays, Fortran order, big-endian, integer and structured dtypes by name', () => {
  const cases: [string, RegExp][] = [
    ['object.npy', /object\.npy: .*dtype \|O is an object array \(a pickle\), which is never read/],
    ['fortran.npy', /fortran\.npy: .*fortran_order is True/],
    ['big-endian.npy', /big-endian\.npy: .*dtype >f4 is not supported.*big-endian/],
    ['int.npy', /int\.npy: .*dtype <i4 is not supported; supported: little-endian floats/],
    ['structured.npy', /structured\.npy: .*structured dtype/],
  ];
  for (const [name, message] of cases) assert.throws(() => readNpyFile(file(name)), message, name);
});

test('refuses truncated or padded data and damaged headers before allocating', () => {
  const good = new Uint8Array(fs.readFileSync(file('f4.npy')));
  assert.throws(
    () => readNpy(good.subarray(0, good.length - 1), 'cut.npy'),
    /cut\.npy: <f4 array of shape \(2, 3\) needs 24 bytes of data but 23 are present \(truncated\)/,
  );
  assert.throws(
    () => readNpy(concat([good, new Uint8Array(4)]), 'long.npy'),
    /needs 24 bytes of data but 28 are present/,
  );
  assert.throws(() => readNpy(good.subarray(0, 60), 'head.npy'), /header of 118 bytes runs past/);
  assert.throws(() => readNpy(new Uint8Array(8), 'zero.npy'), /\\x93NUMPY magic/);
  const withHeader = (text: string) => {
    const bytes = new Uint8Array(10 + text.length);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(bytes.buffer).setUint16(8, text.length, true);
    for (let i = 0; i < text.length; i++) bytes[10 + i] = text.charCodeAt(i);
    return bytes;
  };
  const header = (shape: string, extra = '') =>
    withHeader(`{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, ${extra}}\n`);
  // A huge shape is refused from the header alone: nothing of that size is allocated.
  assert.throws(
    () => readNpy(header('(4000000000, 4000000000)'), 'huge.npy'),
    /huge\.npy: .*shape \(4000000000, 4000000000\) is too large/,
  );
  assert.throws(
    () => readNpy(header('(100000, 100000)'), 'big.npy'),
    /big\.npy: <f4 array of shape \(100000, 100000\) needs 40000000000 bytes of data but 0 are present/,
  );
  assert.throws(() => readNpy(header('(2, -3)'), 'neg.npy'), /non-negative integer/);
  assert.throws(
    () => readNpy(header('(2, 3)', "'x': 1, "), 'extra.npy'),
    /extra\.npy: .*unexpected value at character 63/,
  );
  assert.throws(() => readNpy(header('(2, 3)', "'extra': True, "), 'keys.npy'), /header keys are/);
  assert.throws(
    () => readNpy(withHeader("{'descr': '<f4'"), 'open.npy'),
    /open\.npy: .*expected , or \} at character 15/,
  );
  assert.throws(
    () => readNpy(withHeader("__import__('os').system('x')\n"), 'code.npy'),
    /code\.npy: not a \.npy array we can read \(header .*expected \{/,
  );
  const versionThree = new Uint8Array(good);
  versionThree[6] = 9;
  assert.throws(() => readNpy(versionThree, 'v9.npy'), /format version 9\.0/);
});

test('npz: numpy savez and savez_compressed archives; headers without reading the data', () => {
  for (const name of ['params.npz', 'compressed.npz']) {
    const npz = openNpz(path.join(FIX, 'gemma-scope', name));
    assert.deepEqual(npz.names().sort(), ['W_dec', 'W_enc', 'b_dec', 'b_enc', 'threshold']);
    assert.deepEqual(npz.header('W_enc').shape, [4, 6]);
    assert.deepEqual(npz.read('W_dec').shape, [6, 4]);
    assert.throws(() => npz.read('W_gate'), /no array W_gate; the archive holds W_enc/);
  }
  const stored = openNpz(path.join(FIX, 'gemma-scope', 'params.npz'));
  assert.ok(stored.storedF32('W_enc'), 'np.savez records are stored: streamable');
  const compressed = openNpz(path.join(FIX, 'gemma-scope', 'compressed.npz'));
  assert.equal(compressed.storedF32('W_enc'), undefined, 'deflated records are read whole');
  assert.deepEqual(
    [...compressed.read('W_enc').data],
    [...stored.read('W_enc').data],
    'same values either way',
  );
});

test('npz: our writer round-trips, and damaged archives are refused with the file named', () => {
  const dir = tmp();
  try {
    const data = Float32Array.from({ length: 12 }, (_, i) => i / 3);
    const out = path.join(dir, 'a.npz');
    writeNpz(out, [
      { name: 'm', shape: [3, 4], data },
      { name: 'v', shape: [2], data: Float32Array.of(1, 2) },
    ]);
    assert.deepEqual([...openNpz(out).read('m').data], [...data]);
    assert.equal(npyHeaderBytes([3, 4]).length % 64, 0, 'data starts 64-byte aligned');

    // A record whose data was cut: the npy check names the array.
    const npy = concat([npyHeaderBytes([3, 4]), new Uint8Array(40)]);
    const cut = path.join(dir, 'cut.npz');
    fs.writeFileSync(cut, buildZip([{ name: 'm.npy', data: npy }]));
    assert.throws(
      () => openNpz(cut).read('m'),
      /cut\.npz: array m: <f4 array of shape \(3, 4\) needs 48 bytes of data but 40 are present/,
    );
    assert.throws(() => openNpz(cut).storedF32('m'), /needs 48 bytes of data but 40/);
    // A flipped data byte fails the CRC.
    const bytes = new Uint8Array(fs.readFileSync(out));
    bytes[200] ^= 1;
    const flipped = path.join(dir, 'flipped.npz');
    fs.writeFileSync(flipped, bytes);
    assert.throws(() => openNpz(flipped).read('m'), /flipped\.npz: .*fails its CRC-32 check/);
    // Not a zip at all.
    const plain = path.join(dir, 'plain.npz');
    fs.copyFileSync(file('f4.npy'), plain);
    assert.throws(() => openNpz(plain), /plain\.npz: corrupt or truncated zip archive/);
    // An object array inside an npz is refused like a bare one.
    const obj = path.join(dir, 'obj.npz');
    fs.writeFileSync(
      obj,
      buildZip([{ name: 'o.npy', data: new Uint8Array(fs.readFileSync(file('object.npy'))) }]),
    );
    assert.throws(() => openNpz(obj).read('o'), /obj\.npz: array o: .*object array/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
