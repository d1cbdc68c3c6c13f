import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSafetensors, readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { bf16BitsToF32, f16BitsToF32, f32ToBF16Bits, f32ToF16Bits } from '../../src/io/float16.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-safetensors-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let fileCount = 0;
const tmpFile = (name = 'x.safetensors') => path.join(tmp, `${fileCount++}-${name}`);

/** A safetensors file assembled byte by byte: u64 length, header text, then the raw data bytes. */
function buildFile(header: unknown, data: Uint8Array, opts: { headerText?: string } = {}): string {
  const text = opts.headerText ?? JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const file = tmpFile();
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

const u16le = (...bits: number[]) => {
  const b = Buffer.alloc(bits.length * 2);
  bits.forEach((v, i) => b.writeUInt16LE(v, i * 2));
  return b;
};

test('parses a hand-built 2x3 F32 tensor', () => {
  const data = Buffer.alloc(24);
  [1, -2, 0.5, 3.25, -0, 100].forEach((v, i) => data.writeFloatLE(v, i * 4));
  const file = buildFile(
    {
      __metadata__: { format: 'pt' },
      w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    },
    data,
  );
  const st = openSafetensors(file);
  assert.deepEqual(st.names(), ['w']);
  assert.equal(st.has('w'), true);
  assert.equal(st.has('v'), false);
  assert.deepEqual(st.shape('w'), [2, 3]);
  assert.equal(st.dtype('w'), 'F32');
  assert.deepEqual(st.metadata, { format: 'pt' });
  const t = st.read('w');
  assert.equal(t.dtype, 'F32');
  assert.deepEqual(t.shape, [2, 3]);
  assert.deepEqual([...t.data], [1, -2, 0.5, 3.25, -0, 100]);
});

test('reads tensors at their offsets, not in header order', () => {
  const data = Buffer.alloc(12);
  [7, 8, 9].forEach((v, i) => data.writeFloatLE(v, i * 4));
  const file = buildFile(
    {
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    },
    data,
  );
  const all = readSafetensors(file);
  assert.deepEqual([...all.get('a')!.data], [7, 8]);
  assert.deepEqual([...all.get('b')!.data], [9]);
});

test('F16 known bit patterns', () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0400, 2 ** -14], // smallest normal
    [0x3555, 0.333251953125],
    [0x8000, -0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const file = buildFile(
    { h: { dtype: 'F16', shape: [cases.length + 1], data_offsets: [0, 2 * (cases.length + 1)] } },
    u16le(...cases.map((c) => c[0]), 0x7e00),
  );
  const t = openSafetensors(file).read('h');
  assert.equal(t.dtype, 'F16');
  cases.forEach(([, v], i) => assert.equal(t.data[i], v, `case ${i}`));
  assert.ok(Number.isNaN(t.data[cases.length]));
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
});

test('BF16 known bit patterns', () => {
  const cases: [number, number][] = [
    [0x3f80, 1],
    [0xc000, -2],
    [0x4049, 3.140625],
    [0x0001, 2 ** -133], // bf16 keeps f32's subnormals
    [0x7f80, Infinity],
    [0xff80, -Infinity],
  ];
  const file = buildFile(
    { b: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 12] } },
    u16le(...cases.map((c) => c[0])),
  );
  const t = openSafetensors(file).read('b');
  assert.equal(t.dtype, 'BF16');
  assert.deepEqual(t.shape, [2, 3]);
  cases.forEach(([, v], i) => assert.equal(t.data[i], v, `case ${i}`));
  assert.ok(Number.isNaN(bf16BitsToF32(0x7fc0)));
});

test('BF16 encoding rounds to nearest, ties to even, and round-trips through a file', () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [-2, 0xc000],
    [1 + 2 ** -8, 0x3f80], // halfway between 1 and 1 + 2^-7: to the even 1
    [1 + 3 * 2 ** -8, 0x3f82], // halfway between 1 + 2^-7 and 1 + 2^-6: to the even 1 + 2^-6
    [1 + 2 ** -8 + 2 ** -20, 0x3f81], // just above halfway: up
    [3.4e38, 0x7f80], // rounds past the largest bf16: inf
    [2 ** -133, 0x0001], // subnormal kept
    [-Infinity, 0xff80],
  ];
  for (const [x, bits] of cases) assert.equal(f32ToBF16Bits(x), bits, `${x}`);
  assert.ok(Number.isNaN(bf16BitsToF32(f32ToBF16Bits(NaN))));
  const file = tmpFile();
  const values = Float32Array.from(cases.map((c) => c[0]));
  writeSafetensors(file, [{ name: 'b', shape: [values.length], data: values, dtype: 'BF16' }]);
  const t = openSafetensors(file).read('b');
  assert.equal(t.dtype, 'BF16');
  cases.forEach(([, bits], i) => assert.equal(t.data[i], bf16BitsToF32(bits), `case ${i}`));
});

test('F16 encoding hits hand-computed patterns and rounds ties to even', () => {
  assert.equal(f32ToF16Bits(1), 0x3c00);
  assert.equal(f32ToF16Bits(-2), 0xc000);
  assert.equal(f32ToF16Bits(65504), 0x7bff);
  assert.equal(f32ToF16Bits(65519), 0x7bff);
  assert.equal(f32ToF16Bits(65520), 0x7c00); // the tie above 65504 goes to even = inf
  assert.equal(f32ToF16Bits(1e9), 0x7c00);
  assert.equal(f32ToF16Bits(-1e9), 0xfc00);
  assert.equal(f32ToF16Bits(2 ** -24), 0x0001);
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie to even (0)
  assert.equal(f32ToF16Bits(1.5 * 2 ** -24), 0x0002); // tie to even (2)
  assert.equal(f32ToF16Bits(2 ** -26), 0x0000);
  assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie between 0x3c00 and 0x3c01 -> even
  assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie between 0x3c01 and 0x3c02 -> even
  assert.equal(f32ToF16Bits(-0), 0x8000);
  assert.equal(f32ToF16Bits(Infinity), 0x7c00);
  assert.equal(f32ToF16Bits(NaN) & 0x7c00, 0x7c00);
  assert.notEqual(f32ToF16Bits(NaN) & 0x3ff, 0);
});

test('F16 encoding: every finite half decodes and re-encodes to itself', () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assert.equal(f32ToF16Bits(f16BitsToF32(h)), h, `bits ${h.toString(16)}`);
  }
});

test('F16 encoding picks the nearest half (brute force over neighbours)', () => {
  // Deterministic pseudo-random f32 values over many magnitudes.
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround((rand() - 0.5) * 2 ** (Math.floor(rand() * 44) - 28));
    const h = f32ToF16Bits(x);
    const err = Math.abs(f16BitsToF32(h) - x);
    if (Math.abs(x) > 65520) continue;
    const sign = h & 0x8000;
    const magnitude = h & 0x7fff;
    for (const m of [magnitude - 1, magnitude + 1]) {
      if (m < 0 || m >= 0x7c00) continue;
      const nErr = Math.abs(f16BitsToF32(sign | m) - x);
      assert.ok(
        err < nErr || (err === nErr && (magnitude & 1) === 0),
        `x=${x} got ${h.toString(16)}, neighbour ${(sign | m).toString(16)} is as close`,
      );
    }
  }
});

test('round trip: write F32 and F16, read back', () => {
  const file = tmpFile();
  const a = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) * 10);
  const b = Float32Array.from([0.1, -3.3, 70000, 1e-6]);
  writeSafetensors(
    file,
    [
      { name: 'a', shape: [3, 4], data: a },
      { name: 'b', shape: [2, 2], data: b, dtype: 'F16' },
      { name: 'scalar', shape: [], data: Float32Array.of(5) },
      { name: 'empty', shape: [0, 3], data: new Float32Array(0) },
    ],
    { note: 'hello' },
  );
  // Header padded to 8 bytes with spaces.
  const raw = fs.readFileSync(file);
  const n = Number(raw.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
  assert.match(raw.subarray(8, 8 + n).toString('utf8'), /^\{.*\} *$/);
  const st = openSafetensors(file);
  assert.deepEqual(st.metadata, { note: 'hello' });
  assert.deepEqual(st.names(), ['a', 'b', 'scalar', 'empty']);
  assert.deepEqual(st.read('a'), { dtype: 'F32', shape: [3, 4], data: a });
  const rb = st.read('b');
  assert.equal(rb.dtype, 'F16');
  assert.deepEqual(
    [...rb.data],
    [...b].map((v) => f16BitsToF32(f32ToF16Bits(v))),
  );
  assert.equal(rb.data[2], Infinity); // 70000 overflows half
  assert.deepEqual(st.read('scalar').shape, []);
  assert.deepEqual([...st.read('scalar').data], [5]);
  assert.equal(st.read('empty').data.length, 0);
  assert.deepEqual(
    fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('writing a subarray view writes only the view', () => {
  const file = tmpFile();
  const big = Float32Array.from({ length: 10 }, (_, i) => i);
  writeSafetensors(file, [{ name: 'v', shape: [3], data: big.subarray(4, 7) }]);
  assert.deepEqual([...openSafetensors(file).read('v').data], [4, 5, 6]);
});

test('reads a file written by Python with torch-computed F32/F16/BF16 values', () => {
  const dir = new URL('../fixtures/load/', import.meta.url);
  const expected = JSON.parse(
    fs.readFileSync(new URL('torch-written.expected.json', dir), 'utf8'),
  ) as Record<string, { shape: number[]; values: (number | string)[] }>;
  const st = openSafetensors(new URL('torch-written.safetensors', dir).pathname);
  assert.equal(st.metadata.writer, 'make-load-fixtures.py');
  for (const [name, e] of Object.entries(expected)) {
    if (name === 'f16_rounding') continue;
    const t = st.read(name);
    assert.deepEqual(t.shape, e.shape, name);
    const want = e.values.map((v) =>
      typeof v === 'string' ? Number(v.replace('inf', 'Infinity')) : v,
    );
    assert.deepEqual([...t.data], want, name);
  }
  assert.equal(st.dtype('f16.matrix'), 'F16');
  assert.equal(st.dtype('bf16.matrix'), 'BF16');
  assert.equal(st.dtype('layers.0.attention.bias'), 'BOOL');
  assert.throws(
    () => st.read('layers.0.attention.bias'),
    /torch-written\.safetensors: tensor layers\.0\.attention\.bias has dtype BOOL, which is not supported; supported dtypes: F32, F16, BF16/,
  );
  assert.throws(() => st.read('steps'), /dtype I64/);
});

test('F16 writing rounds exactly like torch .half()', () => {
  const expected = JSON.parse(
    fs.readFileSync(
      new URL('../fixtures/load/torch-written.expected.json', import.meta.url),
      'utf8',
    ),
  ) as { f16_rounding: { source: number[]; bits: number[] } };
  const { source, bits } = expected.f16_rounding;
  assert.ok(source.length > 400);
  source.forEach((x, i) => assert.equal(f32ToF16Bits(x), bits[i], `x=${x}`));
});

// Error cases: each message names the file and what was wrong.

test('error: missing file and directory', () => {
  const missing = path.join(tmp, 'nope.safetensors');
  assert.throws(() => openSafetensors(missing), new RegExp(`${missing}: no such file`));
  assert.throws(() => openSafetensors(tmp), new RegExp(`${tmp}: not a file`));
});

test('error: file too short', () => {
  const file = tmpFile();
  fs.writeFileSync(file, Buffer.from([1, 2, 3]));
  assert.throws(() => openSafetensors(file), new RegExp(`${file}: file too short.*3 bytes`));
});

test('error: header length larger than the file', () => {
  const file = buildFile(null, Buffer.alloc(0), { headerText: '{}' });
  const raw = fs.readFileSync(file);
  raw.writeBigUInt64LE(1000n);
  fs.writeFileSync(file, raw);
  assert.throws(
    () => openSafetensors(file),
    new RegExp(`${file}: header length 1000 bytes is larger than the file \\(10 bytes\\)`),
  );
  // A PyTorch zip checkpoint misnamed .safetensors gets a hint.
  const zip = tmpFile();
  fs.writeFileSync(zip, Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(60)]));
  assert.throws(() => openSafetensors(zip), /zip archive, e\.g\. a PyTorch \.bin/);
});

test('error: header not JSON', () => {
  const file = buildFile(null, Buffer.alloc(0), { headerText: '{"a": {"dtype": ' });
  assert.throws(() => openSafetensors(file), new RegExp(`${file}: header is not valid JSON`));
  const arr = buildFile([1, 2], Buffer.alloc(0));
  assert.throws(() => openSafetensors(arr), /header is JSON but not an object/);
});

test('error: offsets past the end of the file', () => {
  const file = buildFile(
    { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } },
    Buffer.alloc(8),
  );
  assert.throws(
    () => openSafetensors(file),
    new RegExp(
      `${file}: tensor w: data_offsets \\[0, 16\\] run past the end of the file \\(the data buffer has 8 bytes`,
    ),
  );
});

test('error: byte size does not match dtype x shape', () => {
  const file = buildFile(
    { w: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 24] } },
    Buffer.alloc(24),
  );
  assert.throws(
    () => openSafetensors(file),
    new RegExp(`${file}: tensor w: holds 24 bytes but F16 \\[2,3\\] needs 12`),
  );
});

test('error: malformed entries', () => {
  const bad = (entry: unknown, pattern: RegExp) => {
    const file = buildFile({ w: entry }, Buffer.alloc(8));
    assert.throws(() => openSafetensors(file), pattern);
  };
  bad({ shape: [2], data_offsets: [0, 8] }, /tensor w: missing dtype/);
  bad({ dtype: 'F32', shape: [-2], data_offsets: [0, 8] }, /tensor w: shape \[-2\]/);
  bad({ dtype: 'F32', shape: [2], data_offsets: [8, 0] }, /tensor w: data_offsets \[8,0\]/);
});

test('error: unsupported dtype names it and the supported ones', () => {
  const file = buildFile(
    { w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } },
    Buffer.alloc(8),
  );
  const st = openSafetensors(file); // opening is fine; only reading it fails
  assert.equal(st.dtype('w'), 'F64');
  assert.throws(
    () => st.read('w'),
    new RegExp(
      `${file}: tensor w has dtype F64, which is not supported; supported dtypes: F32, F16, BF16`,
    ),
  );
});

test('error: unknown tensor name lists a few available, closest first', () => {
  const file = tmpFile();
  const names = ['alpha', 'beta', 'layers.0.w', 'layers.1.w', 'layers.2.w', 'gamma', 'delta'];
  writeSafetensors(
    file,
    names.map((name) => ({ name, shape: [1], data: Float32Array.of(1) })),
  );
  const st = openSafetensors(file);
  assert.throws(
    () => st.read('layers.9.w'),
    new RegExp(
      `${file}: no tensor named layers\\.9\\.w; available: layers\\.0\\.w, layers\\.1\\.w, layers\\.2\\.w, .*\\(7 in all\\)`,
    ),
  );
  assert.throws(() => st.shape('zzz'), /no tensor named zzz/);
});

test('error: writing inconsistent tensors', () => {
  const file = tmpFile();
  assert.throws(
    () => writeSafetensors(file, [{ name: 'w', shape: [2, 2], data: new Float32Array(3) }]),
    new RegExp(`${file}: tensor w has 3 values but shape \\[2,2\\] needs 4`),
  );
  assert.throws(
    () =>
      writeSafetensors(file, [
        { name: 'w', shape: [1], data: new Float32Array(1) },
        { name: 'w', shape: [1], data: new Float32Array(1) },
      ]),
    /tensor w given twice/,
  );
  assert.throws(
    () => writeSafetensors(path.join(tmp, 'no-dir', 'x.safetensors'), []),
    /no-dir\/x\.safetensors: cannot write/,
  );
  assert.equal(fs.existsSync(file), false);
});

test('hostile headers: huge shapes, overlapping tensors, prototype dtypes, lying header length', () => {
  const refuses = (header: unknown, data: Uint8Array, pattern: RegExp) => {
    const file = buildFile(header, data);
    assert.throws(() => openSafetensors(file), pattern);
  };
  // A header asking for 2^62 elements in 16 bytes: refused at open, nothing allocated.
  refuses(
    { w: { dtype: 'F32', shape: [2 ** 31, 2 ** 31], data_offsets: [0, 16] } },
    Buffer.alloc(16),
    /tensor w: holds 16 bytes but F32 \[2147483648,2147483648\] needs 18446744073709552000/,
  );
  refuses(
    { w: { dtype: 'F32', shape: [2 ** 53, 2], data_offsets: [0, 16] } },
    Buffer.alloc(16),
    /tensor w: shape \[9007199254740992,2\] is not a list of non-negative integers/,
  );
  // Two tensors over the same bytes.
  refuses(
    {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    },
    Buffer.alloc(16),
    /tensors a and b overlap \(bytes 0\.\.16 and 8\.\.16 of the data buffer\)/,
  );
  // dtype names that are Object.prototype keys are not dtypes.
  for (const dtype of ['constructor', '__proto__', 'toString']) {
    const file = buildFile({ w: { dtype, shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(8));
    const st = openSafetensors(file);
    assert.throws(
      () => st.read('w'),
      new RegExp(`tensor w has dtype ${dtype}, which is not supported`),
    );
  }
  // Header length near 2^64 or larger than the file.
  const lying = tmpFile();
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(0xffff_ffff_ffff_fff0n);
  fs.writeFileSync(lying, Buffer.concat([len, Buffer.from('{}')]));
  assert.throws(
    () => openSafetensors(lying),
    /header length 18446744073709551600 bytes is larger than the file/,
  );
  // Offsets beyond 2^53 are not exact integers and are refused.
  refuses(
    { w: { dtype: 'F32', shape: [0], data_offsets: [2 ** 60, 2 ** 60] } },
    Buffer.alloc(0),
    /tensor w: data_offsets \[1152921504606847000,1152921504606847000\] is not a pair/,
  );
  // Back-to-back tensors and empty tensors anywhere are fine.
  const ok = buildFile(
    {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      e: { dtype: 'F32', shape: [0, 5], data_offsets: [4, 4] },
      b: { dtype: 'F16', shape: [4], data_offsets: [8, 16] },
    },
    Buffer.alloc(16),
  );
  assert.deepEqual(openSafetensors(ok).shape('e'), [0, 5]);
});
