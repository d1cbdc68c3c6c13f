// Ground-truth labels of transcoder features on the model organism, as feature-labels.ts labels
// SAE features: each feature gets the grammar annotation that best predicts where it fires (F1
// over the same held-out annotated corpus). Written as <transcoders>/labels.jsonl with site
// mlp_L meaning "the transcoder that replaces mlp_L".

import path from 'node:path';
import { GptNeoX } from '../model/gptneox.ts';
import { loadModel } from '../model/load.ts';
import { loadTranscoders } from '../transcoders/load.ts';
import { asMlpReplacement } from '../transcoders/mlp-replacement.ts';
import { mlpInput } from '../transcoders/train.ts';
import {
  forEachCorpusBatch,
  grammarTokenIds,
  LABEL_SEED,
  LABELS_FILE,
  LabelCounter,
  labelCorpus,
  summariseLabels,
  wordLabelMatrix,
  writeLabels,
  type FeatureLabel,
  type SiteLabelSummary,
} from './feature-labels.ts';
import { WORD_LABELS } from './labels.ts';
import { ORGANISM_MIX } from './train-model.ts';

export interface TranscoderLabelOptions {
  model: string;
  /** Default <model>/transcoders; the labels go beside its config.yaml. */
  transcoders?: string;
  tokens?: number; // default 65536
}

/** Labels every feature of the transcoders, without writing them (the claims recompute these). */
export function labelTranscoderFeatures(o: TranscoderLabelOptions): {
  labels: FeatureLabel[];
  tokens: number;
} {
  const loaded = loadModel(o.model, { tokenizer: true });
  if (!loaded.tokenizer)
    throw new Error(`${o.model}: no tokenizer.json; labelling needs the organism's tokenizer`);
  const { tokenIds, eosId } = grammarTokenIds(loaded.tokenizer, o.model);
  const model = new GptNeoX(loaded.config, loaded.weights);
  const dir = o.transcoders ?? path.join(o.model, 'transcoders');
  // Per-layer transcoders or a CLT: a CLT's layer-L features are labelled where they read (mlp_L's input).
  const mlps = asMlpReplacement(loadTranscoders(dir).transcoders);
  const layers = Array.from({ length: mlps.numLayers }, (_, L) => L);
  const corpus = labelCorpus(
    o.tokens ?? 65536,
    loaded.config.maxPositionEmbeddings,
    tokenIds,
    eosId,
    LABEL_SEED,
    ORGANISM_MIX,
  );
  const labelNames = Object.keys(WORD_LABELS);
  const K = labelNames.length;
  const matrix = wordLabelMatrix(corpus.words, labelNames);
  const counters = layers.map((L) => new LabelCounter(mlps.width(L), K));
  const T = corpus.T;
  forEachCorpusBatch(model, corpus, 32, (pass, r0, n) => {
    const rowLabels = matrix.subarray(r0 * T * K, (r0 * T + n) * K);
    layers.forEach((L) => {
      const input = pass.activation(L === 0 ? 'embed' : `resid_${L - 1}`);
      const x = mlpInput(model, L, input, pass.activation(`attn_${L}`), n);
      counters[L].add(mlps.activate(L, mlps.preActivations(L, x, n), n), rowLabels, n);
    });
  });
  const labels = counters.flatMap((c, L) => c.best(`mlp_${L}`, labelNames));
  return { labels, tokens: corpus.rows * T };
}

/** Labels every feature and writes <transcoders>/labels.jsonl. */
export function runTranscoderLabels(o: TranscoderLabelOptions): {
  file: string;
  labels: FeatureLabel[];
  summary: SiteLabelSummary[];
  tokens: number;
} {
  const { labels, tokens } = labelTranscoderFeatures(o);
  const file = path.join(o.transcoders ?? path.join(o.model, 'transcoders'), LABELS_FILE);
  writeLabels(file, labels);
  return { file, labels, summary: summariseLabels(labels), tokens };
}
