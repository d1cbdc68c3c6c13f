// `sfc dashboards` as a function: loads the model, the SAEs and a corpus (a text file, one
// document per line), computes the dashboards of a circuit's features (or of every feature) and
// writes dashboards.json.

import type { WeightDtype } from '../sae/dictionary.ts';
import { readCorpus } from '../data/corpus.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { OnProgress } from '../progress.ts';
import { CIRCUIT_FILE, readCircuit } from '../circuit/circuit.ts';
import { fileInFolder } from '../io/text-file.ts';
import { defaultModelDir } from '../model/load.ts';
import { openModel } from '../model/load-family.ts';
import type { BosMode, Tokenizer } from '../model/tokenizer.ts';
import { openSaes, type SaeLibrary } from '../sae/library.ts';
import { computeDashboards, featureKey, type DashboardResult, type FeatureRef } from './compute.ts';
import { LOGIT_LENS, round4, writeDashboards, type DashboardsFile } from './file.ts';
import type { Shard } from '../shards/shard.ts';
import { runDashboardsShard } from './shards.ts';

export interface DashboardRunOptions {
  /** Model folder (default: the shipped organism). */
  model?: string;
  /** SAE folder (default <model>/saes). */
  saes?: string;
  /** The dictionary size to use when the folder holds several per site. */
  saeWidth?: number;
  /** The average L0 to choose among a site's variants (Gemma Scope's average_l0_K; default 100). */
  saeL0?: number;
  /** Told the opened SAE folder, e.g. to print which file serves which site. */
  onSaes?: (library: SaeLibrary) => void;
  dtype?: WeightDtype;
  /** Text file, one document per line; with `documents` it only names them. */
  corpus: string;
  /** The documents themselves (e.g. generated text), instead of reading `corpus`. */
  documents?: string[];
  /** Folder that receives dashboards.json. */
  out: string;
  /** A circuit.json (or its folder) whose features to describe, or 'all' (default <out>/circuit.json). */
  features?: string;
  top?: number;
  ctx?: number;
  /** Read at most this many documents (default all). */
  maxDocuments?: number;
  /** Start each document with the BOS token: 'auto' as the tokenizer does; default none. */
  bos?: BosMode;
  /** One shard of a sharded run: writes <out>/dashboards-I-of-N.part.json (./shards.ts). */
  shard?: Shard;
  onProgress?: OnProgress;
}

export interface DashboardRunSummary {
  file: string;
  features: number;
  windows: number;
  tokens: number;
  /** Whether the documents got the BOS token, and the tokenizer that decided. */
  bos: boolean;
  tokenizer: Tokenizer;
}

/** The features of a circuit file (feature nodes, each (site, feature) once, in file order). */
export function circuitFeatures(file: string): FeatureRef[] {
  const circuit = readCircuit(file);
  const seen = new Set<string>();
  const out: FeatureRef[] = [];
  for (const n of circuit.nodes) {
    if (n.kind !== 'feature' || n.feature === null) continue;
    const key = featureKey(n.site, n.feature);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ site: n.site, feature: n.feature });
  }
  return out;
}

/** The file form of computed dashboards (token strings from `tokenString`). */
export function toDashboardsFile(
  result: DashboardResult,
  meta: { model: string; saes: string; corpus: string; top: number },
  tokenString: (id: number) => string,
): DashboardsFile {
  const vocab: Record<string, string> = {};
  const use = (id: number) => {
    if (!(id in vocab)) vocab[id] = tokenString(id);
    return id;
  };
  const features: DashboardsFile['features'] = {};
  for (const f of result.dashboards) {
    features[featureKey(f.site, f.feature)] = {
      site: f.site,
      feature: f.feature,
      max_activation: round4(f.maxActivation),
      frequency: round4(f.frequency),
      histogram: {
        lo: round4(f.histogram.lo),
        hi: round4(f.histogram.hi),
        counts: f.histogram.counts,
      },
      contexts: f.contexts.map((c) => ({
        ids: c.ids.map(use),
        acts: c.acts.map(round4),
        at: c.at,
      })),
      promoted: f.promoted.map((t) => [use(t.id), round4(t.value)] as [number, number]),
      suppressed: f.suppressed.map((t) => [use(t.id), round4(t.value)] as [number, number]),
    };
  }
  return {
    version: 1,
    ...meta,
    windows: result.windows,
    tokens: result.tokens,
    ctx: result.ctx,
    logit_lens: LOGIT_LENS,
    vocab,
    features,
  };
}

export function runDashboards(o: DashboardRunOptions): DashboardRunSummary {
  const modelDir = o.model ?? defaultModelDir();
  const saesDir = o.saes ?? path.join(modelDir, 'saes');
  // The engine of the folder's architecture (GptNeoX for GPT-NeoX, Transformer for the others).
  const { model, tokenizer } = openModel(modelDir, { tokenizer: true });
  if (!tokenizer)
    throw new Error(`${modelDir}: no tokenizer.json; dashboards need it to read the corpus`);
  const library = openSaes(saesDir, model.shape.numLayers, {
    model,
    width: o.saeWidth,
    l0: o.saeL0,
    dtype: o.dtype,
  });
  o.onSaes?.(library);

  let features: FeatureRef[];
  const which = o.features ?? path.join(o.out, CIRCUIT_FILE);
  if (which === 'all') {
    features = library
      .sites()
      .flatMap((site) =>
        Array.from({ length: library.get(site).width }, (_, feature) => ({ site, feature })),
      );
  } else {
    if (!fs.existsSync(which))
      throw new Error(
        `${which}: no such circuit file; pass --features <circuit.json> or --features all`,
      );
    features = circuitFeatures(which);
  }
  const texts = o.documents
    ? o.documents.slice(0, o.maxDocuments)
    : readCorpus(o.corpus, o.maxDocuments);
  let bos = false;
  const documents = texts.map((text) => {
    if (o.bos === undefined) return tokenizer.encode(text);
    const prompt = tokenizer.encodePrompt(text, o.bos);
    bos ||= prompt.bos;
    return prompt.ids;
  });
  const top = o.top ?? 20;
  if (o.shard) {
    const part = runDashboardsShard({
      model,
      dictionary: (site) => library.get(site),
      release: (site) => library.drop(site),
      documents,
      features,
      top,
      ctx: o.ctx,
      vocabLimit: tokenizer.vocabSize,
      tokenString: (id) => tokenizer.tokenString(id),
      paths: { model: modelDir, saes: saesDir, corpus: o.corpus },
      featuresFrom: which === 'all' ? 'all' : fileInFolder(which, CIRCUIT_FILE),
      maxDocuments: o.maxDocuments ?? null,
      saeWidth: o.saeWidth ?? null,
      shard: o.shard,
      out: o.out,
    });
    return { ...part, features: features.length, bos, tokenizer };
  }
  const result = computeDashboards({
    model,
    dictionary: (site) => library.get(site),
    documents,
    features,
    top,
    ctx: o.ctx,
    vocabLimit: tokenizer.vocabSize,
    release: (site) => library.drop(site),
    onProgress: o.onProgress,
  });
  const file = writeDashboards(
    o.out,
    toDashboardsFile(result, { model: modelDir, saes: saesDir, corpus: o.corpus, top }, (id) =>
      tokenizer.tokenString(id),
    ),
  );
  return {
    file,
    features: features.length,
    windows: result.windows,
    tokens: result.tokens,
    bos,
    tokenizer,
  };
}
