// A small random world for attribution tests: a tiny GPT-NeoX, random ReLU SAEs at every site,
// random contrastive examples, and the slow obvious way of running the model with SAEs spliced in.

import type { GptNeoXConfig } from '../../src/model/config.ts';
import { GptNeoX, makeBatch, type SiteHook } from '../../src/model/gptneox.ts';
import { exampleFromIds, type TaskExample } from '../../src/data/tasks.ts';
import type { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { Rng } from '../../src/random.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';

export interface World {
  config: GptNeoXConfig;
  model: GptNeoX;
  saes: Map<string, SparseAutoencoder>;
  examples: TaskExample[];
}

export function makeWorld(options: {
  parallel: boolean;
  examples?: number;
  T?: number;
  single?: boolean;
  scale?: number;
  seed?: number;
  width?: number;
}): World {
  const seed = options.seed ?? 1;
  const config = tinyConfig({
    useParallelResidual: options.parallel,
    hiddenSize: 12,
    numHeads: 3,
    intermediateSize: 24,
    rotaryPct: 0.5,
  });
  const model = new GptNeoX(config, randomWeights(config, seed, options.scale ?? 0.4));
  const saes = randomSaes(config, options.width ?? 24, seed + 1);
  const rng = new Rng(seed + 2);
  const T = options.T ?? 4;
  const V = config.vocabSize;
  const examples: TaskExample[] = Array.from({ length: options.examples ?? 3 }, (_, i) => {
    const clean = Array.from({ length: T }, () => rng.int(V));
    const patch = clean.slice();
    patch[rng.int(T)] = rng.int(V); // one token differs, like a singular/plural swap
    const cleanAnswerId = rng.int(V);
    const patchAnswerId = (cleanAnswerId + 1 + rng.int(V - 1)) % V;
    return exampleFromIds({
      line: i + 1,
      clean,
      patch: options.single ? null : patch,
      cleanAnswerId,
      patchAnswerId,
    });
  });
  return { config, model, saes, examples };
}

/** The paper's metric from full last-token logits [V]. */
export function metricOf(logits: Float32Array, e: TaskExample): number {
  return (
    (e.patch && e.patchAnswerId !== null ? logits[e.patchAnswerId] : 0) - logits[e.cleanAnswerId]
  );
}

/**
 * m for one example with SAEs spliced in at every site, the slow obvious way: at each site the
 * activation is encoded, `edit` may change the features f [T*F] and error ε [T*d] of that site,
 * and the site is replaced by decode(f) + ε.
 */
export function splicedMetric(
  w: World,
  e: TaskExample,
  ids: number[],
  edit?: (site: string, f: Float32Array, err: Float32Array) => void,
): number {
  const hooks = splicedHooks(w, ids.length, edit);
  const logits = w.model.forward(makeBatch([ids]), { hooks, logits: 'last' }).logits;
  return metricOf(logits, e);
}

/**
 * Hooks that splice every site's SAE in: encode, let `edit` change the features f [T*F] and the
 * error ε [T*d], replace the site by decode(f) + ε.
 */
export function splicedHooks(
  w: World,
  T: number,
  edit?: (site: string, f: Float32Array, err: Float32Array) => void,
): Record<string, SiteHook> {
  const hooks: Record<string, SiteHook> = {};
  for (const site of w.model.sites) {
    hooks[site] = (x) => {
      const sae = w.saes.get(site)!;
      const { features, error } = sae.run(x, T);
      edit?.(site, features, error);
      const out = sae.decode(features, T);
      for (let i = 0; i < out.length; i++) out[i] += error[i];
      return out;
    };
  }
  return hooks;
}

/** A site's activation [T*d] on one input, from a plain forward. */
export function siteActivation(w: World, ids: number[], site: string): Float32Array {
  return w.model
    .forward(makeBatch([ids]), { logits: 'none' })
    .activation(site)
    .slice();
}

export function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}
