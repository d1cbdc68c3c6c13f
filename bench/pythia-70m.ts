// Pythia-70M's shape (EleutherAI/pythia-70m-deduped config.json), for benchmarks with random weights.

import type { GptNeoXConfig } from '../src/model/config.ts';
import { parameterLayout, zeroWeights, type GptNeoXWeights } from '../src/model/weights.ts';
import { normalFill } from './normal-fill.ts';

export const PYTHIA_70M: GptNeoXConfig = {
  vocabSize: 50304,
  hiddenSize: 512,
  numLayers: 6,
  numHeads: 8,
  intermediateSize: 2048,
  rotaryPct: 0.25,
  rotaryEmbBase: 10000,
  maxPositionEmbeddings: 2048,
  layerNormEps: 1e-5,
  useParallelResidual: true,
  attentionBias: true,
};

/**
 * Weights initialised as a freshly built model: layer-norm gains 1, biases 0, every other tensor
 * N(0, 0.02²), each from its own seed so the values are the same on every run.
 */
export function initialWeights(c: GptNeoXConfig): GptNeoXWeights {
  const weights = zeroWeights(c);
  let seed = 7;
  for (const p of parameterLayout(c)) {
    const t = p.get(weights);
    if (p.name.includes('norm') && p.name.endsWith('weight')) t.fill(1);
    else if (!p.name.endsWith('bias')) normalFill(t, 0.02, seed++);
  }
  return weights;
}
