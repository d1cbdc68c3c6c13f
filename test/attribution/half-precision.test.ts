// Node effects with SAEs held in half precision (--dtype bf16|f16) against float32, within a
// bound derived from the rounding (docs/sae.md, "Half precision"). The model always runs on the
// true activations, so ∇m at every site is the same in both runs; only the SAE products move.
// With u the format's unit roundoff (bf16 2^-8, f16 2^-11), each rounded weight is w(1 + δ),
// |δ| ≤ u, so for feature i at one row, with g = ∇m, x a state's activation:
//   gF_i = W_D[i]·g moves by at most u·A_i,        A_i = Σ_k |W_D[i,k] g_k|,
//   f_i = relu(W_E[i]·(x - b_D) + b_E[i]) by at most u·C_i (relu is 1-Lipschitz),
//                                                  C_i = Σ_k |W_E[i,k] (x_k - b_D,k)|,
// so the effect gF_i·Δf_i moves by at most |gF_i|·u(C_i,clean + C_i,patch) + u·A_i·|Δf_i| + the
// product of the two, and the error node's g·Δε (ε = x - W_D f - b_D) by the sum over features
// of u·A_i·(|f_i| + u·C_i) + |gF_i|·u·C_i over both states. Float32 rounding of the products adds
// a few units of 2^-24 of the same sums in either run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discover, type DiscoverOptions } from '../../src/attribution/discover.ts';
import { makeBatch } from '../../src/model/gptneox.ts';
import type { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { makeWorld } from './world.ts';

const UNIT_ROUNDOFF = { bf16: 2 ** -8, f16: 2 ** -11 };

for (const dtype of ['bf16', 'f16'] as const)
  for (const single of [false, true])
    test(`${dtype} node effects are within the rounding bound of float32 (${single ? 'zero ablation' : 'clean/patch'})`, () => {
      const w = makeWorld({ parallel: true, single, examples: 4, T: 4 });
      const half = new Map([...w.saes].map(([s, sae]) => [s, sae.inPrecision(dtype)]));
      const options: DiscoverOptions = { method: 'ig', steps: 3, batchSize: 2, nodesOnly: true };
      const exact = discover(w.model, (s) => w.saes.get(s)!, w.examples, options);
      const rounded = discover(w.model, (s) => half.get(s)!, w.examples, options);
      const u = UNIT_ROUNDOFF[dtype];
      let checked = 0;
      let moved = 0;
      exact.batches.forEach((bn, b) => {
        const bh = rounded.batches[b];
        const d = w.config.hiddenSize;
        const patchActs = single
          ? null
          : w.model.forward(makeBatch(bn.examples.map((k) => w.examples[k].patch!)), {
              logits: 'none',
            });
        for (const [site, sn] of bn.sites) {
          const sh = bh.sites.get(site)!;
          assert.deepEqual(sh.grad, sn.grad, `${site}: the gradient does not depend on the SAE`);
          const sae = w.saes.get(site)! as SparseAutoencoder;
          const F = sae.width;
          const xClean = bn.clean.get(site)!;
          const xPatch = patchActs?.activation(site) ?? null;
          const bD = sae.decoderBias;
          // Sums over k of |terms| and the value, per feature, at row n.
          const rowTerms = (n: number) => {
            const A = new Float64Array(F);
            const gF = new Float64Array(F);
            const C = [new Float64Array(F), new Float64Array(F)];
            const f = [new Float64Array(F), new Float64Array(F)];
            for (let i = 0; i < F; i++) {
              for (let k = 0; k < d; k++) {
                const t = sae.decoder[i * d + k] * sn.grad[n * d + k];
                A[i] += Math.abs(t);
                gF[i] += t;
              }
              [xClean, xPatch].forEach((x, s) => {
                if (!x) return; // zero ablation: f = 0 in both runs
                let z = sae.encoderBias[i];
                for (let k = 0; k < d; k++) {
                  const t = sae.encoder[i * d + k] * (x[n * d + k] - bD[k]);
                  C[s][i] += Math.abs(t);
                  z += t;
                }
                f[s][i] = Math.max(0, z);
              });
            }
            return { A, gF, C, f };
          };
          const gamma = (d + 8) * 2 ** -24; // float32 rounding of a d-term product, either run
          const effects = (delta: typeof sn.delta, effect: Float32Array, n: number) => {
            const m = new Map<number, { e: number; df: number }>();
            for (let e = delta.rowStart[n]; e < delta.rowStart[n + 1]; e++)
              m.set(delta.index[e], { e: effect[e], df: delta.value[e] });
            return m;
          };
          for (let n = 0; n < bn.B * bn.T; n++) {
            const { A, gF, C, f } = rowTerms(n);
            const want = effects(sn.delta, sn.effect, n);
            const got = effects(sh.delta, sh.effect, n);
            for (const i of new Set([...want.keys(), ...got.keys()])) {
              const e = want.get(i)?.e ?? 0;
              const df = Math.abs(want.get(i)?.df ?? 0);
              const dDf = u * (C[0][i] + C[1][i]);
              const bound =
                (u + gamma) * A[i] * df +
                Math.abs(gF[i]) * (dDf + gamma * (C[0][i] + C[1][i])) +
                u * A[i] * dDf +
                gamma * Math.abs(e);
              const diff = Math.abs((got.get(i)?.e ?? 0) - e);
              assert.ok(diff <= bound, `${site} row ${n} feature ${i}: ${diff} > ${bound}`);
              checked++;
              if (diff > 0) moved++;
            }
            let errorBound = gamma * Math.abs(sn.errorEffect[n]);
            for (let i = 0; i < F; i++)
              for (let s = 0; s < 2; s++)
                errorBound +=
                  (u + gamma) * A[i] * (f[s][i] + (u + gamma) * C[s][i]) +
                  Math.abs(gF[i]) * (u + gamma) * C[s][i];
            const diff = Math.abs(sh.errorEffect[n] - sn.errorEffect[n]);
            assert.ok(diff <= errorBound, `${site} row ${n} error: ${diff} > ${errorBound}`);
          }
        }
      });
      assert.ok(checked > 100, `only ${checked} feature effects compared`);
      assert.ok(moved > checked / 2, 'half precision changed almost nothing: is it in use?');
    });
