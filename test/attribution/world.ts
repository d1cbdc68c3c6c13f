// A small random world for attribution tests: a tiny GPT-NeoX (or a tiny model of another family
// on the generic engine), random ReLU SAEs at every site (attn_z_L included), random contrastive examples, and the
// slow obvious way of running the model with SAEs spliced in.

import type { Discovery } from '../../src/attribution/discover.ts';
import type { GptNeoXConfig } from '../../src/model/config.ts';
import { GptNeoX, makeBatch, type SiteHook } from '../../src/model/gptneox.ts';
import type { LanguageModel } from '../../src/model/language-model.ts';
import { exampleFromIds, type TaskExample } from '../../src/data/tasks.ts';
import type { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { Rng } from '../../src/random.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomModelSaes } from '../helpers/random-saes.ts';
import { tinyTransformer } from '../helpers/random-transformer.ts';

/** A model of any engine, SAEs at some of its sites, and examples. */
export interface ModelWorld {
  model: LanguageModel;
  saes: Map<string, SparseAutoencoder>;
  examples: TaskExample[];
}

export interface World extends ModelWorld {
  config: GptNeoXConfig;
  model: GptNeoX;
}

/**
 * A tiny random model of `family` (test/helpers/random-transformer.ts) with SAEs at `sites`
 * (default every site, attn_z_L included) and random examples.
 */
export function makeFamilyWorld(
  family: string,
  options: {
    examples?: number;
    T?: number;
    single?: boolean;
    scale?: number;
    seed?: number;
    width?: number;
    sites?: string[];
  } = {},
): ModelWorld {
  const seed = options.seed ?? 1;
  const model = tinyTransformer(family, seed, options.scale ?? 0.3);
  const saes = randomModelSaes(model, options.width ?? 24, seed + 1, options.sites);
  const examples = randomExamples(
    new Rng(seed + 2),
    model.shape.vocabSize,
    options.examples ?? 3,
    options.T ?? 4,
    options.single ?? false,
  );
  return { model, saes, examples };
}

export function makeWorld(options: {
  parallel: boolean;
  examples?: number;
  T?: number;
  single?: boolean;
  scale?: number;
  seed?: number;
  width?: number;
  /** Sites with SAEs (default every site, attn_z_L included). */
  sites?: string[];
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
  const saes = randomModelSaes(model, options.width ?? 24, seed + 1, options.sites);
  const examples = randomExamples(
    new Rng(seed + 2),
    config.vocabSize,
    options.examples ?? 3,
    options.T ?? 4,
    options.single ?? false,
  );
  return { config, model, saes, examples };
}

/** `count` examples of T random tokens whose patch differs at one position. */
function randomExamples(
  rng: Rng,
  V: number,
  count: number,
  T: number,
  single: boolean,
): TaskExample[] {
  return Array.from({ length: count }, (_, i) => {
    const clean = Array.from({ length: T }, () => rng.int(V));
    const patch = clean.slice();
    patch[rng.int(T)] = rng.int(V); // one token differs, like a singular/plural swap
    const cleanAnswerId = rng.int(V);
    const patchAnswerId = (cleanAnswerId + 1 + rng.int(V - 1)) % V;
    return exampleFromIds({
      line: i + 1,
      clean,
      patch: single ? null : patch,
      cleanAnswerId,
      patchAnswerId,
    });
  });
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
  w: ModelWorld,
  e: TaskExample,
  ids: number[],
  edit?: (site: string, f: Float32Array, err: Float32Array) => void,
): number {
  const hooks = splicedHooks(w, ids.length, edit);
  const logits = w.model.forward(makeBatch([ids]), { hooks, logits: 'last' }).logits;
  return metricOf(logits, e);
}

/**
 * Hooks that splice every site's SAE in (every site that has one): encode, let `edit` change the
 * features f [T*F] and the error ε [T*d], replace the site by decode(f) + ε.
 */
export function splicedHooks(
  w: ModelWorld,
  T: number,
  edit?: (site: string, f: Float32Array, err: Float32Array) => void,
): Record<string, SiteHook> {
  const hooks: Record<string, SiteHook> = {};
  for (const site of w.model.sites) {
    if (!w.saes.has(site)) continue;
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
export function siteActivation(w: ModelWorld, ids: number[], site: string): Float32Array {
  return w.model
    .forward(makeBatch([ids]), { logits: 'none' })
    .activation(site)
    .slice();
}

/** A node as circuit.json names it: a feature, or the error (feature null), at one position. */
export interface NodeAt {
  site: string;
  position: number | null;
  feature: number | null;
}

/**
 * The node's exact indirect effect by brute force, mean over w.examples: every SAE spliced in,
 * the one node set to its value on the patch input. cleanM[k] is example k's spliced clean metric.
 */
export function bruteForceNodeEffect(w: ModelWorld, node: NodeAt, cleanM: number[]): number {
  const sae = w.saes.get(node.site)!;
  const t = node.position!;
  const effects = w.examples.map((e, k) => {
    const patched = sae.run(siteActivation(w, e.patch!, node.site), e.patch!.length);
    const m = splicedMetric(w, e, e.clean, (s, f, err) => {
      if (s !== node.site) return;
      if (node.feature === null)
        err.set(patched.error.subarray(t * sae.dIn, (t + 1) * sae.dIn), t * sae.dIn);
      else f[t * sae.width + node.feature] = patched.features[t * sae.width + node.feature];
    });
    return m - cleanM[k];
  });
  return effects.reduce((a, b) => a + b) / effects.length;
}

/**
 * What attribution patching estimates, by central differences: the derivative of m along the
 * node's Δu (patch minus clean, as the site's activation moves), mean over w.examples.
 */
export function finiteDifferenceAttribution(w: ModelWorld, node: NodeAt): number {
  const sae = w.saes.get(node.site)!;
  const d = sae.dIn;
  const t = node.position!;
  const slopes = w.examples.map((e) => {
    const T = e.clean.length;
    const clean = sae.run(siteActivation(w, e.clean, node.site), T);
    const patch = sae.run(siteActivation(w, e.patch!, node.site), T);
    const delta = new Float32Array(d);
    for (let j = 0; j < d; j++)
      delta[j] =
        node.feature === null
          ? patch.error[t * d + j] - clean.error[t * d + j]
          : (patch.features[t * sae.width + node.feature] -
              clean.features[t * sae.width + node.feature]) *
            sae.decoderRow(node.feature)[j];
    const mAt = (h: number) => {
      const hooks: Record<string, SiteHook> = {
        [node.site]: (x) => {
          const y = x.slice();
          for (let j = 0; j < d; j++) y[t * d + j] += h * delta[j];
          return y;
        },
      };
      return metricOf(w.model.forward(makeBatch([e.clean]), { hooks }).logits, e);
    };
    const D = (h: number) => (mAt(h) - mAt(-h)) / (2 * h);
    return (4 * D(0.025) - D(0.05)) / 3; // Richardson
  });
  return slopes.reduce((a, b) => a + b) / slopes.length;
}

// One Pearson correlation for the agreement study and its tests.
export { pearson } from '../../scripts/discover-agreement.ts';

/** Every node of every example as [example, site, position, feature|null, effect]. */
export function allNodes(dsc: Discovery): [number, string, number, number | null, number][] {
  const out: [number, string, number, number | null, number][] = [];
  for (const bn of dsc.batches) {
    for (const [site, sn] of bn.sites) {
      for (let n = 0; n < bn.B * bn.T; n++) {
        const [b, t] = [Math.floor(n / bn.T), n % bn.T];
        for (let e = sn.delta.rowStart[n]; e < sn.delta.rowStart[n + 1]; e++)
          out.push([bn.examples[b], site, t, sn.delta.index[e], sn.effect[e]]);
        out.push([bn.examples[b], site, t, null, sn.errorEffect[n]]);
      }
    }
  }
  return out;
}
