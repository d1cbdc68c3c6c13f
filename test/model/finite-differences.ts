// Shared finite-difference checks for the family engine's tests. The forward passes are float32,
// the metric phi = sum(r * out) is accumulated in float64, and each derivative is a
// Richardson-extrapolated central difference (steps 2h and h), which cancels the h² error term.
// A check compares a random direction over the whole tensor and three single coordinates.

import assert from 'node:assert/strict';
import { Rng } from '../../src/random.ts';

/** Normal samples from the project's seeded generator. */
export function rng(seed: number): () => number {
  const generator = new Rng(seed);
  return () => generator.normal();
}

export function randn(n: number, next: () => number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => offset + scale * next());
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Richardson-extrapolated central difference of f at 0. */
export function derivative(f: (step: number) => number, h = 1e-2): number {
  const central = (s: number) => (f(s) - f(-s)) / (2 * s);
  return (4 * central(h) - central(2 * h)) / 3;
}

/**
 * |fd - g·u| <= tol · max(|g·u|, |g||u|/sqrt(size)): the second term keeps the check meaningful
 * when the directional derivative happens to be near 0. Returns the relative error seen.
 */
export function assertDerivative(
  label: string,
  fd: number,
  g: ArrayLike<number>,
  u: ArrayLike<number>,
  tol: number,
): number {
  const an = dot(g, u);
  const scale = Math.sqrt((dot(g, g) * dot(u, u)) / g.length) + 1e-12;
  const err = Math.abs(fd - an) / Math.max(scale, Math.abs(an));
  assert.ok(err <= tol, `${label}: finite difference ${fd} vs backward ${an} (scale ${scale})`);
  return err;
}

/**
 * run() computes the output from the current contents of the tensors; analytic(r) returns the
 * backward's gradients of sum(r * out) for the named tensors. Returns the worst relative error.
 */
export function checkGradients(
  label: string,
  tensors: Record<string, Float32Array>,
  run: () => Float32Array,
  analytic: (r: Float32Array) => Record<string, Float32Array>,
  { seed = 1, h = 1e-2, tol = 4e-4 } = {},
): number {
  const next = rng(seed);
  const out = run();
  const r = randn(out.length, next);
  const grads = analytic(r);
  const phi = () => dot(r, run());
  let worst = 0;
  for (const [name, x] of Object.entries(tensors)) {
    const g = grads[name];
    assert.ok(g, `${label}: no gradient for ${name}`);
    assert.equal(g.length, x.length, `${label}: gradient of ${name} has the wrong length`);
    const base = Float32Array.from(x);
    const directions: Float32Array[] = [randn(x.length, next)];
    for (let k = 0; k < 3; k++) {
      const e = new Float32Array(x.length);
      e[Math.floor(Math.abs(next() * 1e6)) % x.length] = 1;
      directions.push(e);
    }
    for (const u of directions) {
      const fd = derivative((step) => {
        for (let i = 0; i < x.length; i++) x[i] = base[i] + step * u[i];
        const value = phi();
        x.set(base);
        return value;
      }, h);
      worst = Math.max(worst, assertDerivative(`${label} d/d${name}`, fd, g, u, tol));
    }
  }
  return worst;
}

/** max |a - b| over the arrays, with the index, for messages. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
