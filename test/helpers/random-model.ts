// Small random GPT-NeoX models for tests that need a model but not a trained one.

import type { GptNeoXConfig } from '../../src/model/config.ts';
import { parameterLayout, zeroWeights, type GptNeoXWeights } from '../../src/model/weights.ts';
import { Rng } from '../../src/random.ts';

export function tinyConfig(overrides: Partial<GptNeoXConfig> = {}): GptNeoXConfig {
  return {
    vocabSize: 29,
    hiddenSize: 16,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 32,
    rotaryPct: 0.5,
    rotaryEmbBase: 10000,
    maxPositionEmbeddings: 32,
    layerNormEps: 1e-5,
    useParallelResidual: true,
    attentionBias: true,
    ...overrides,
  };
}

/** Normal weights: layer-norm gains near 1, everything else N(0, scale²). */
export function randomWeights(config: GptNeoXConfig, seed: number, scale = 0.5): GptNeoXWeights {
  const rng = new Rng(seed);
  const weights = zeroWeights(config);
  for (const p of parameterLayout(config)) {
    const values = p.get(weights);
    const isGain = /layernorm\.weight|final_layer_norm\.weight/.test(p.name);
    for (let i = 0; i < values.length; i++) {
      values[i] = isGain ? 1 + 0.1 * rng.normal() : scale * rng.normal();
    }
  }
  return weights;
}
