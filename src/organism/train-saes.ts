// The SAE stage of `npm run organism`: a dictionary at every site of the organism.
// N tokens collected, d model dim, F dictionary width, B rows per forward, T context.
//
// One forward pass yields every site's activations at once, so the token set is collected once
// (rows packed from fresh grammar texts, each starting at a text start, as in training) and held in
// memory, one [N, d] array per site; each SAE then trains from its site's array.

import fs from 'node:fs';
import path from 'node:path';
import type { OnProgress } from '../progress.ts';
import { GptNeoX } from '../model/gptneox.ts';
import { loadModel } from '../model/load.ts';
import { parseTransformerSite, siteNames } from '../model/sites.ts';
import { Rng } from '../random.ts';
import { ArraySource } from '../sae/activations.ts';
import { saveDictionary } from '../sae/formats.ts';
import { openSaes } from '../sae/library.ts';
import { evaluateSaes, type SiteStats } from '../sae/metrics.ts';
import { trainSae, type TrainMetrics } from '../sae/train.ts';
import { generateCorpus, GrammarSampler, type GrammarMix } from './grammar-sampler.ts';
import { readSaeRecord, type SaeRecordFile } from './records-file.ts';
import { buildOrganismTokenizer } from './tokenizer-builder.ts';
import {
  ORGANISM_MIX,
  organismEosId,
  PackedRows,
  textTokenIds,
  TRAINING_DIR,
} from './train-model.ts';

export const SAES_DIR = 'saes';
export const SAE_RECORD = 'saes.json';

/** Seeds of the SAE stage's corpora, apart from the model's training stream (seed 1). */
export const SAE_SEEDS = { activations: 101, evaluation: 202, training: 303 } as const;

interface CollectOptions {
  model: GptNeoX;
  tokenIds: Map<string, number>;
  eosId: number;
  /** Tokens to collect (rounded up to whole rows). */
  tokens: number;
  seed: number;
  mix?: Partial<GrammarMix>;
  rowsPerForward?: number; // B, default 32
  /** Keep only these sites, and run only the layers they need (default: every site). */
  sites?: readonly string[];
  onProgress?: OnProgress;
}

/** Activations at every site (or `o.sites`) over one token set: site -> [N*d]. */
export function collectActivations(o: CollectOptions): Map<string, Float32Array> {
  const sites = o.sites ?? o.model.sites;
  const layers = Math.max(
    0,
    ...sites.map((s) => {
      const ref = parseTransformerSite(s, o.model.config.numLayers);
      return ref.kind === 'embed' ? 0 : ref.layer + 1;
    }),
  );
  // The same rows through fewer layers give the same activations at the kept sites.
  const model =
    layers === o.model.config.numLayers
      ? o.model
      : new GptNeoX(
          { ...o.model.config, numLayers: layers },
          { ...o.model.weights, layers: o.model.weights.layers.slice(0, layers) },
        );
  const d = model.config.hiddenSize;
  const T = model.config.maxPositionEmbeddings;
  const B = o.rowsPerForward ?? 32;
  const rows = Math.ceil(o.tokens / T);
  const N = rows * T;
  const out = new Map(sites.map((s) => [s, new Float32Array(N * d)]));
  const packer = new PackedRows(new GrammarSampler(new Rng(o.seed), o.mix), o.tokenIds, o.eosId);
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let r0 = 0; r0 < rows; r0 += B) {
    const b = Math.min(B, rows - r0);
    packer.fill(ids, targets, b, T);
    const batch = {
      ids: ids.subarray(0, b * T),
      batchSize: b,
      seqLen: T,
      lengths: new Array<number>(b).fill(T),
    };
    const pass = model.forward(batch, { logits: 'none' });
    for (const site of sites) out.get(site)!.set(pass.activation(site), r0 * T * d);
    o.onProgress?.(Math.min(rows, r0 + B), rows);
  }
  return out;
}

/**
 * Sites whose SAE differs from the stage's ReLU default. The embedding is a lookup table of the
 * vocabulary's rows: a ReLU/L1 code of it was dense (L0 46), spread he/she over shared features
 * and left 13–27% of a gendered token's norm in the error, so SHIFT could not remove gender. A
 * TopK code with small k gives the gendered words features of their own (one gender only), which
 * SHIFT's judge finds; k = 3 is what scripts/shift-sweep.ts selects on the validation split
 * (balanced_val, 5 seeds; docs/shift.md has the sweep), never on the test split.
 */
export const SITE_SAE_OVERRIDES: Readonly<Record<string, SiteSaeConfig>> = {
  embed: { kind: 'topk', k: 3, steps: 1500, lr: 2e-3 },
};

/** How one site's SAE is trained; unset fields take the stage's defaults. */
export interface SiteSaeConfig {
  kind?: 'relu' | 'topk';
  k?: number;
  l1?: number;
  steps?: number;
  lr?: number;
}

export interface SaeStageOptions {
  out: string;
  /** Tokens of activations collected once for all sites (default 400k). */
  tokens?: number;
  width?: number; // F, default 8 x d
  l1?: number; // λ in normalised units (default 1)
  steps?: number; // per site (default 800)
  batchSize?: number; // default 1024
  lr?: number; // default 3e-4
  /** Tokens of held-out text for the metrics (default 16384). */
  evalTokens?: number;
  sites?: string[];
  onProgress?: (stage: string) => OnProgress;
  log?: (line: string) => void;
}

/** What the SAE stage records in <out>/training/saes.json. */
export interface SaeRecord {
  width: number;
  l1: number;
  steps: number;
  batchSize: number;
  lr: number;
  tokens: number;
  collectSeconds: number;
  sites: {
    site: string;
    /** This site's own settings (SITE_SAE_OVERRIDES), when they differ from the defaults above. */
    config?: SiteSaeConfig;
    seconds: number;
    train: TrainMetrics;
    /** [step, fve, l0] through training. */
    curve: [number, number, number][];
  }[];
  evaluation: SiteStats[];
  evalSeconds: number;
}

/**
 * Trains and saves <out>/saes/<site>/ for every site, then evaluates them on held-out text.
 * Returns the record as written and read back (merged with the old one when only some sites ran).
 */
export function runSaeStage(o: SaeStageOptions): SaeRecordFile {
  const log = o.log ?? (() => {});
  const progress = o.onProgress ?? (() => undefined);
  const { config, weights } = loadModel(o.out);
  const model = new GptNeoX(config, weights);
  const d = config.hiddenSize;
  const built = buildOrganismTokenizer();
  const eosId = organismEosId(built.json);
  const width = o.width ?? 8 * d;
  const l1 = o.l1 ?? 1;
  const steps = o.steps ?? 800;
  const batchSize = o.batchSize ?? 1024;
  const lr = o.lr ?? 3e-4;
  const tokens = o.tokens ?? 400_000;
  // The organism's dictionaries sit at embed, attn_L, mlp_L, resid_L (not attn_z_L).
  const sites = o.sites ?? siteNames(config.numLayers);
  for (const site of sites)
    if (!model.sites.includes(site))
      throw new Error(
        `SAE stage: ${site} is not a site of the organism (${model.sites.join(', ')})`,
      );

  let t0 = performance.now();
  const acts = collectActivations({
    model,
    tokenIds: built.ids,
    eosId,
    tokens,
    seed: SAE_SEEDS.activations,
    mix: ORGANISM_MIX,
    sites,
    onProgress: progress('activations'),
  });
  const collectSeconds = (performance.now() - t0) / 1000;
  log(`collected ${tokens} tokens at ${sites.length} sites in ${collectSeconds.toFixed(0)} s`);

  const root = path.join(o.out, SAES_DIR);
  const record: SaeRecord = {
    width,
    l1,
    steps,
    batchSize,
    lr,
    tokens,
    collectSeconds,
    sites: [],
    evaluation: [],
    evalSeconds: 0,
  };
  for (const site of sites) {
    const config = SITE_SAE_OVERRIDES[site] ?? {};
    const trained = trainSiteSae(acts.get(site)!, d, root, {
      site,
      width,
      batchSize,
      tokens,
      // A step budget the caller sets (a quick run) wins over the site's own.
      config: { ...config, steps: o.steps ?? config.steps ?? steps, lr: config.lr ?? lr },
      l1,
      seed: SAE_SEEDS.training,
      onProgress: progress(`sae ${site}`),
    });
    acts.delete(site);
    record.sites.push({
      site,
      ...(Object.keys(config).length ? { config } : {}),
      seconds: trained.seconds,
      train: trained.metrics,
      curve: trained.curve,
    });
    const m = trained.metrics;
    log(
      `${site}: L0 ${m.l0.toFixed(1)}, FVE ${m.fve.toFixed(3)}, dead ${(100 * m.deadFraction).toFixed(1)}% (${trained.seconds.toFixed(0)} s)`,
    );
  }

  t0 = performance.now();
  const documents = generateCorpus(new Rng(SAE_SEEDS.evaluation), 2000, ORGANISM_MIX).map((t) =>
    textTokenIds(t, built.ids),
  );
  record.evaluation = evaluateSaes(model, openSaes(root, config.numLayers), {
    documents,
    tokens: o.evalTokens ?? 16384,
    ctx: config.maxPositionEmbeddings,
    eosId,
    sites,
    onProgress: progress('evaluate'),
  });
  record.evalSeconds = (performance.now() - t0) / 1000;
  const file = path.join(o.out, TRAINING_DIR, SAE_RECORD);
  const merged = o.sites && fs.existsSync(file) ? mergeRecord(readSaeRecord(file), record) : record;
  fs.mkdirSync(path.join(o.out, TRAINING_DIR), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(merged, null, 1) + '\n');
  // Read back through the reader, so a writer that drifts from it fails here and not in a report.
  return readSaeRecord(file);
}

export interface SiteSaeRun {
  site: string;
  width: number; // F
  batchSize: number;
  /** Tokens the activations came from (recorded in cfg.json). */
  tokens: number;
  /** The site's settings; `steps` and `lr` must be set, `l1` falls back to the one below. */
  config: SiteSaeConfig & { steps: number; lr: number };
  l1: number;
  /** Seeds both the order the activations are read in and the SAE's initialisation. */
  seed: number;
  onProgress?: OnProgress;
}

export interface SiteSaeTrained {
  metrics: TrainMetrics;
  seconds: number;
  /** [step, fve, l0] through training. */
  curve: [number, number, number][];
}

/**
 * Trains one site's SAE on its activations [N*d] and saves it as <root>/<site>/. The SAE stage
 * runs it for every site; scripts/shift-sweep.ts reruns it for the embedding at other k and seeds.
 */
export function trainSiteSae(
  acts: Float32Array,
  d: number,
  root: string,
  run: SiteSaeRun,
): SiteSaeTrained {
  const t0 = performance.now();
  const curve: [number, number, number][] = [];
  const { site, config } = run;
  const l1 = config.l1 ?? run.l1;
  const result = trainSae(new ArraySource(acts, d, run.seed), {
    site,
    width: run.width,
    kind: config.kind,
    k: config.k,
    l1,
    steps: config.steps,
    batchSize: run.batchSize,
    lr: config.lr,
    seed: run.seed,
    progressEvery: Math.max(1, Math.floor(config.steps / 50)),
    onProgress: (done, total, info) => {
      if (info && typeof info.FVE === 'number' && typeof info.L0 === 'number')
        curve.push([done, info.FVE, info.L0]);
      run.onProgress?.(done, total, info);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  saveDictionary(root, result.dictionary, {
    training: {
      ...result.metrics,
      ...(config.kind === 'topk' ? { kind: 'topk', k: config.k } : { l1 }),
      steps: config.steps,
      batchSize: run.batchSize,
      lr: config.lr,
      tokens: run.tokens,
      scale: result.scale,
    },
  });
  return { metrics: result.metrics, seconds, curve };
}

/**
 * A retrain of some sites replaces their entries and keeps the others', in the model's site
 * order, so the record (and TRAINING.md) still describes every shipped SAE.
 */
function mergeRecord(old: SaeRecordFile, fresh: SaeRecord) {
  const known = [...old.sites, ...fresh.sites].map((s) => s.site);
  const order = (site: string) => known.indexOf(site);
  // The old entries as read (measurements may be null) beside this run's.
  const replace = <A extends { site: string }, B extends { site: string }>(a: A[], b: B[]) => {
    const renewed = new Set(b.map((x) => x.site));
    return [...a.filter((x) => !renewed.has(x.site)), ...b].sort(
      (x, y) => order(x.site) - order(y.site),
    );
  };
  return {
    ...old,
    sites: replace(old.sites, fresh.sites),
    evaluation: replace(old.evaluation, fresh.evaluation),
    // TRAINING.md states the time to collect every site at once; a subset's is not that.
    collectSeconds: old.collectSeconds,
  };
}
