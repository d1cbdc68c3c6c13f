// A dictionary's features on a corpus: each feature's mean activation (what `mean` sets it to),
// its max (the unit of `steer=Amax`) and the error's mean vector (`err=mean`). Computed over every
// real token of the corpus, and cached as JSON in a folder (the CLI uses out/feature-stats/),
// keyed by the model, the dictionary and the corpus files with their sizes and times.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { makeBatch } from '../model/gptneox.ts';
import type { LanguageModel } from '../model/language-model.ts';
import type { Dictionary } from '../sae/dictionary.ts';

export interface FeatureStats {
  site: string;
  /** Real tokens the statistics are over. */
  tokens: number;
  /** [F] mean activation over every token (zeros included). */
  mean: Float32Array;
  /** [F] max activation. */
  max: Float32Array;
  /** [d] mean of the error x − x̂. */
  errorMean: Float32Array;
}

/** Statistics of one site's dictionary over token sequences (one document each), in batches. */
export function computeFeatureStats(
  model: LanguageModel,
  dict: Dictionary,
  documents: number[][],
  batchSize = 32,
): FeatureStats {
  const site = dict.site;
  const { width: F, dIn: d } = dict;
  const sum = new Float64Array(F);
  const max = new Float32Array(F);
  const errorSum = new Float64Array(d);
  let tokens = 0;
  const limit = model.shape.maxPositions;
  const docs = documents.filter((doc) => doc.length > 0).map((doc) => doc.slice(0, limit));
  if (docs.length === 0) throw new Error(`feature statistics for ${site}: the corpus is empty`);
  for (let start = 0; start < docs.length; start += batchSize) {
    const chunk = docs.slice(start, start + batchSize);
    const batch = makeBatch(chunk);
    const T = batch.seqLen;
    const pass = model.forward(batch, { logits: 'none' });
    const act = pass.activation(site);
    // Real tokens only: padding rows would count activations of filler tokens.
    const rows: number[] = [];
    chunk.forEach((doc, b) => {
      for (let t = 0; t < doc.length; t++) rows.push(b * T + t);
    });
    const x = new Float32Array(rows.length * d);
    rows.forEach((n, r) => x.set(act.subarray(n * d, (n + 1) * d), r * d));
    const { features, error } = dict.run(x, rows.length);
    for (let r = 0; r < rows.length; r++) {
      for (let i = 0; i < F; i++) {
        const v = features[r * F + i];
        sum[i] += v;
        if (v > max[i]) max[i] = v;
      }
      for (let j = 0; j < d; j++) errorSum[j] += error[r * d + j];
    }
    tokens += rows.length;
  }
  return {
    site,
    tokens,
    mean: Float32Array.from(sum, (s) => s / tokens),
    max,
    errorMean: Float32Array.from(errorSum, (s) => s / tokens),
  };
}

const statsFileSchema = z.object({
  version: z.literal(1),
  key: z.string(),
  site: z.string(),
  tokens: z.number().int().positive(),
  mean: z.array(z.number()),
  max: z.array(z.number()),
  errorMean: z.array(z.number()),
});

/** A file's path, size and modification time: enough to notice it changed. */
function fileIdentity(file: string): string {
  const s = fs.statSync(file, { throwIfNoEntry: false });
  return s ? `${path.resolve(file)}:${s.size}:${s.mtimeMs}` : path.resolve(file);
}

/**
 * The cached statistics for `site` under `cacheDir`, or computes and writes them. `inputs` are the
 * files they depend on (model weights, the dictionary's files, the corpus): a change to any of
 * them gives another key, so a stale file is never read.
 */
export function cachedFeatureStats(
  cacheDir: string,
  site: string,
  inputs: string[],
  compute: () => FeatureStats,
): FeatureStats {
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify([site, ...inputs.map(fileIdentity)]))
    .digest('hex')
    .slice(0, 16);
  const file = path.join(cacheDir, `${site}-${key}.json`);
  if (fs.existsSync(file)) {
    let json: unknown = null;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      // not JSON: recomputed below
    }
    const parsed = statsFileSchema.safeParse(json);
    if (parsed.success && parsed.data.key === key && parsed.data.site === site) {
      const p = parsed.data;
      return {
        site,
        tokens: p.tokens,
        mean: Float32Array.from(p.mean),
        max: Float32Array.from(p.max),
        errorMean: Float32Array.from(p.errorMean),
      };
    }
    // A damaged or foreign file: recompute and replace it.
  }
  const stats = compute();
  fs.mkdirSync(cacheDir, { recursive: true });
  const json = {
    version: 1,
    key,
    site,
    tokens: stats.tokens,
    mean: Array.from(stats.mean),
    max: Array.from(stats.max),
    errorMean: Array.from(stats.errorMean),
  };
  fs.writeFileSync(file, JSON.stringify(json) + '\n');
  return stats;
}
