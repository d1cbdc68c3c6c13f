// Sharded dashboards: `sfc dashboards --shard I/N` reads a contiguous slice of the corpus's forward
// groups (windowsPerForward windows each, as a single run groups them) and writes its corpus
// statistics as a part; `sfc merge` joins the parts in shard order and writes dashboards.json.
//
// Nothing here is a floating-point sum: a part holds each feature's non-zero activations in
// corpus order (float32 values, exact in JSON), its best windows and its token count. Joined in
// shard order they are the single run's lists, so the merged file equals the single run's exactly
// (histogram, maximum, frequency, top contexts by max then window).

import crypto from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { describeIssues } from '../io/validation.ts';
import type { LanguageModel } from '../model/language-model.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import {
  fileRefSchema,
  fileSha256,
  firstDifference,
  folderFingerprint,
  folderRefSchema,
  partHeaderShape,
  shardSlice,
  writeFileAtomic,
  type Shard,
} from '../shards/shard.ts';
import {
  computeDashboards,
  finishDashboards,
  type DashboardState,
  type FeatureRef,
} from './compute.ts';
import { writeDashboards } from './file.ts';
import { toDashboardsFile } from './run.ts';

const effect = z.object({ id: z.number().int(), value: z.number() });
const partSchema = z.object({
  ...partHeaderShape,
  stage: z.literal('dashboards'),
  inputs: z.object({
    corpus: fileRefSchema,
    model: folderRefSchema,
    saes: folderRefSchema,
    /** The circuit file's SHA-256, or "all". */
    features: z.string(),
  }),
  options: z.object({
    top: z.number().int(),
    ctx: z.number().int(),
    bins: z.number().int(),
    before: z.number().int(),
    after: z.number().int(),
    max_documents: z.number().int().nullable(),
    sae_width: z.number().int().nullable(),
    windows_per_forward: z.number().int(),
  }),
  groups: z.object({ first: z.number().int(), end: z.number().int(), total: z.number().int() }),
  windows: z.number().int(),
  tokens: z.number().int(),
  /** Token strings of every id in the part's contexts and logit effects. */
  vocab: z.record(z.string(), z.string()),
  features: z.array(
    z.object({
      site: z.string(),
      feature: z.number().int(),
      /** Non-zero activations in corpus order: float32 little-endian bytes, base64. */
      nonzero: z.string(),
      best: z.array(
        z.object({
          window: z.number().int(),
          max: z.number(),
          at: z.number().int(),
          acts: z.array(z.number()),
          ids: z.array(z.number().int()),
        }),
      ),
      promoted: z.array(effect),
      suppressed: z.array(effect),
    }),
  ),
  measured: z.object({ seconds: z.number(), max_rss_bytes: z.number() }),
});
export type DashboardsPart = z.infer<typeof partSchema>;

const WINDOWS_PER_FORWARD = 8;

export interface DashboardsShardInput {
  model: LanguageModel;
  dictionary: (site: string) => Dictionary;
  release: (site: string) => void;
  documents: number[][];
  features: FeatureRef[];
  top: number;
  ctx?: number;
  vocabLimit: number;
  tokenString: (id: number) => string;
  paths: { model: string; saes: string; corpus: string };
  /** The circuit file whose features are described, or 'all'. */
  featuresFrom: string;
  maxDocuments: number | null;
  saeWidth: number | null;
  shard: Shard;
  out: string;
}

export function dashboardsPartFile(out: string, shard: Shard): string {
  return path.join(out, `dashboards-${shard.index}-of-${shard.count}.part.json`);
}

/** Runs one shard of the dashboards and writes its part; returns the part's file. */
export function runDashboardsShard(o: DashboardsShardInput): {
  file: string;
  windows: number;
  tokens: number;
} {
  const t0 = performance.now();
  const T = o.ctx ?? Math.min(64, o.model.shape.maxPositions);
  // The windows as computeDashboards cuts them, to count the groups.
  let windows = 0;
  for (const doc of o.documents) windows += Math.ceil(doc.length / T);
  const total = Math.ceil(windows / WINDOWS_PER_FORWARD);
  const groups = shardSlice(total, o.shard, 'group');
  const result = computeDashboards({
    model: o.model,
    dictionary: o.dictionary,
    documents: o.documents,
    features: o.features,
    top: o.top,
    ctx: o.ctx,
    vocabLimit: o.vocabLimit,
    windowsPerForward: WINDOWS_PER_FORWARD,
    groups,
    release: o.release,
  });
  const s = result.state;
  const vocab: Record<string, string> = {};
  const use = (id: number) => void (vocab[id] ??= o.tokenString(id));
  for (const f of s.features) {
    for (const c of f.best) c.ids.forEach(use);
    for (const t of [...f.promoted, ...f.suppressed]) use(t.id);
  }
  const part: DashboardsPart = {
    format: 'sfc-partial',
    version: 1,
    stage: 'dashboards',
    shard: o.shard,
    inputs: {
      // The documents as read and tokenized: a corpus file or generated organism text alike.
      corpus: {
        path: o.paths.corpus,
        sha256: crypto.createHash('sha256').update(JSON.stringify(o.documents)).digest('hex'),
      },
      model: { path: o.paths.model, fingerprint: folderFingerprint(o.paths.model, false) },
      saes: { path: o.paths.saes, fingerprint: folderFingerprint(o.paths.saes, true) },
      features: o.featuresFrom === 'all' ? 'all' : fileSha256(o.featuresFrom),
    },
    options: {
      top: s.top,
      ctx: s.ctx,
      bins: s.bins,
      before: s.before,
      after: s.after,
      max_documents: o.maxDocuments,
      sae_width: o.saeWidth,
      windows_per_forward: WINDOWS_PER_FORWARD,
    },
    groups: { ...groups, total },
    windows: s.windows,
    tokens: s.tokens,
    vocab,
    features: s.features.map((f) => ({
      ...f.ref,
      nonzero: Buffer.from(f.nonzero.buffer, f.nonzero.byteOffset, f.nonzero.byteLength).toString(
        'base64',
      ),
      best: f.best.map((c) => ({ ...c, acts: Array.from(c.acts) })),
      promoted: f.promoted,
      suppressed: f.suppressed,
    })),
    measured: {
      seconds: (performance.now() - t0) / 1000,
      max_rss_bytes: process.resourceUsage().maxRSS * 1024,
    },
  };
  const file = dashboardsPartFile(o.out, o.shard);
  writeFileAtomic(file, JSON.stringify(part));
  return { file, windows: s.windows, tokens: s.tokens };
}

export function parseDashboardsPart(value: unknown, file: string): DashboardsPart {
  const parsed = partSchema.safeParse(value);
  if (!parsed.success)
    throw new Error(`${file}: not a dashboards part file (${describeIssues(parsed.error)})`);
  return parsed.data;
}

/** What must agree between parts. */
export function dashboardsIdentity(p: DashboardsPart): unknown {
  return {
    stage: p.stage,
    inputs: {
      corpus: p.inputs.corpus.sha256,
      model: p.inputs.model.fingerprint,
      saes: p.inputs.saes.fingerprint,
      features: p.inputs.features,
    },
    options: p.options,
    shards: p.shard.count,
    groups: p.groups.total,
    windows: p.windows,
    features: p.features.map((f) => `${f.site}/${f.feature}`).join(','),
  };
}

/** Float32 values from base64 strings, joined in order. */
function concatFloats(chunks: string[]): Float32Array {
  const bufs = chunks.map((c) => Buffer.from(c, 'base64'));
  const bytes = Buffer.concat(bufs);
  if (bytes.length % 4 !== 0) throw new Error('merge: a nonzero list is not float32 bytes');
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** dashboards.json from parts in shard order (already checked to belong together). */
export function mergeDashboardsParts(parts: DashboardsPart[], out: string): string {
  const first = parts[0];
  for (const [i, p] of parts.entries()) {
    // The logit effects come from the weights alone: every shard computes the same.
    const diff = firstDifference(
      first.features.map((f) => [f.promoted, f.suppressed]),
      p.features.map((f) => [f.promoted, f.suppressed]),
    );
    if (diff) throw new Error(`merge: shard ${i} computed other logit effects: ${diff}`);
  }
  const o = first.options;
  const state: DashboardState = {
    windows: first.windows,
    tokens: parts.reduce((s, p) => s + p.tokens, 0),
    ctx: o.ctx,
    top: o.top,
    bins: o.bins,
    before: o.before,
    after: o.after,
    features: first.features.map((f, k) => ({
      ref: { site: f.site, feature: f.feature },
      nonzero: concatFloats(parts.map((p) => p.features[k].nonzero)),
      // The single run's order: max descending, then the earlier window.
      best: parts
        .flatMap((p) => p.features[k].best)
        .map((c) => ({ ...c, acts: Float32Array.from(c.acts) }))
        .sort((x, y) => y.max - x.max || x.window - y.window)
        .slice(0, o.top),
      promoted: f.promoted,
      suppressed: f.suppressed,
    })),
  };
  const vocab = Object.assign({}, ...parts.map((p) => p.vocab)) as Record<string, string>;
  const file = toDashboardsFile(
    {
      windows: state.windows,
      tokens: state.tokens,
      ctx: state.ctx,
      dashboards: finishDashboards(state),
      state,
    },
    {
      model: first.inputs.model.path,
      saes: first.inputs.saes.path,
      corpus: first.inputs.corpus.path,
      top: o.top,
    },
    (id) => vocab[id],
  );
  return writeDashboards(out, file);
}
