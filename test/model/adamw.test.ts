// AdamW against a two-step example worked by hand (PyTorch's torch.optim.AdamW semantics).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW } from '../../src/model/adamw.ts';

function assertClose(actual: ArrayLike<number>, expected: number[], tol: number) {
  expected.forEach((e, i) =>
    assert.ok(Math.abs(actual[i] - e) <= tol, `index ${i}: ${actual[i]} vs ${e}`),
  );
}

test('two AdamW steps match the hand computation', () => {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; p = [1, -2].
  const p = Float32Array.from([1, -2]);
  const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.01 });
  // Step 1, g = [0.5, -1]: decay p *= 1 - 0.1 * 0.01 = 0.999 -> [0.999, -1.998];
  // m = 0.1 g, v = 0.001 g^2, so m_hat = g and sqrt(v_hat) = |g|: the step is lr * sign(g)
  // (up to eps): p = [0.999 - 0.1 * 0.5 / (0.5 + 1e-8), -1.998 + 0.1 * 1 / (1 + 1e-8)].
  opt.step([Float32Array.from([0.5, -1])]);
  assertClose(p, [0.899000002, -1.898000001], 1e-7);
  // Step 2, g = [0.1, 0.3]: decay p *= 0.999 -> [0.898101002, -1.896101999];
  // m = 0.9 m + 0.1 g = [0.055, -0.06]; v = 0.999 v + 0.001 g^2 = [0.00025975, 0.001089];
  // m_hat = m / (1 - 0.81) = [0.2894737, -0.3157895]; v_hat = v / (1 - 0.998001) = [0.1299400, 0.5447724];
  // p -= 0.1 * m_hat / (sqrt(v_hat) + 1e-8) = [0.0803042, -0.0427848]
  opt.step([Float32Array.from([0.1, 0.3])]);
  assertClose(p, [0.8177969063826518, -1.8533171424282264], 2e-7);
  assert.equal(opt.t, 2);
});

test('AdamW without weight decay, a learning-rate override, and several parameter arrays', () => {
  const a = Float32Array.from([0.5]);
  const b = Float32Array.from([3, -1, 2]);
  const opt = new AdamW([a, b], { lr: 1 });
  // First step moves every entry by lr * sign(g) (here lr overridden to 0.25); g = 0 stays put.
  opt.step([Float32Array.from([-2]), Float32Array.from([0.5, 0, -7])], 0.25);
  assertClose(a, [0.75], 1e-6);
  assertClose(b, [2.75, -1, 2.25], 1e-6);
  assert.equal(opt.lr, 0.25);
  assert.throws(() => opt.step([Float32Array.from([1])]), /1 gradients for 2 parameters/);
  assert.throws(
    () => opt.step([Float32Array.from([1]), Float32Array.from([1])]),
    /gradient 1 has 1 values, parameter has 3/,
  );
});
