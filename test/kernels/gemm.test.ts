import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gemmTotals, matmul } from '../../src/kernels/gemm.ts';

// Independent truth: the textbook triple loop in float64.
function naive(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = s;
    }
  return c;
}

const wave = (len: number, phase: number) =>
  Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.7 + phase));

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `index ${i}: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

test('matmul matches the naive product for every transpose combination', () => {
  const [m, n, k] = [13, 9, 21];
  for (const transA of [false, true])
    for (const transB of [false, true]) {
      const a = wave(m * k, 0.1);
      const b = wave(k * n, 1.3);
      const c = new Float32Array(m * n);
      matmul(a, b, c, m, n, k, { transA, transB });
      assertClose(c, naive(a, b, m, n, k, transA, transB), 1e-4);
    }
});

test('batched matmul multiplies each slice on its own', () => {
  const [batch, m, n, k] = [3, 4, 5, 6];
  const a = wave(batch * m * k, 0.2);
  const b = wave(batch * n * k, 0.9);
  const c = new Float32Array(batch * m * n);
  matmul(a, b, c, m, n, k, { batch, transB: true });
  for (let s = 0; s < batch; s++) {
    const want = naive(a.subarray(s * m * k), b.subarray(s * n * k), m, n, k, false, true);
    assertClose(c.subarray(s * m * n, (s + 1) * m * n), want, 1e-4);
  }
});

test('matmul reads and writes views without touching neighbouring memory', () => {
  const [m, n, k] = [3, 4, 2];
  const backing = new Float32Array(40).fill(7);
  const a = wave(30, 0.5).subarray(5, 5 + m * k);
  const b = wave(k * n, 0.3);
  const c = backing.subarray(10, 10 + m * n);
  matmul(a, b, c, m, n, k);
  assertClose(c, naive(a, b, m, n, k, false, false), 1e-5);
  assert.equal(backing[9], 7);
  assert.equal(backing[10 + m * n], 7);
});

test('accumulate adds the product to what C holds', () => {
  const [m, n, k] = [5, 3, 4];
  const a = wave(m * k, 0.4);
  const b = wave(k * n, 2.1);
  const c = new Float32Array(m * n).fill(1.5);
  matmul(a, b, c, m, n, k, { accumulate: true });
  assertClose(
    c,
    Array.from(naive(a, b, m, n, k, false, false), (v) => v + 1.5),
    1e-5,
  );
});

test('matmul refuses buffers too small for the stated shape', () => {
  assert.throws(
    () => matmul(new Float32Array(5), new Float32Array(6), new Float32Array(6), 2, 3, 3),
    /buffers too small/,
  );
});

test('gemmTotals counts each product run and its 2·batch·m·n·k FLOPs; empty ones are not run', () => {
  const before = gemmTotals();
  matmul(new Float32Array(6), new Float32Array(12), new Float32Array(8), 2, 4, 3); // 2·2·4·3 = 48
  matmul(new Float32Array(24), new Float32Array(60), new Float32Array(40), 2, 5, 3, {
    batch: 4,
  }); // 2·4·2·5·3 = 240
  matmul(new Float32Array(0), new Float32Array(0), new Float32Array(0), 0, 0, 3); // m = 0: no run
  const after = gemmTotals();
  assert.equal(after.calls - before.calls, 2);
  assert.equal(after.flops - before.flops, 48 + 240);
  assert.ok(after.seconds > before.seconds);
});
