// Pythia-70M's shape (EleutherAI/pythia-70m-deduped config.json), for benchmarks with random weights.

import type { GptNeoXConfig } from '../src/model/config.ts';

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
