// Sharded evaluation: `sfc evaluate --shard I/N` runs a contiguous slice of the evaluation batches.
//
// Mean ablation needs the means over every example before any score, so it takes two passes, as
// discovery's edges do. Pass 1 (`--shard I/N`) writes each shard's exact sums of the patch inputs'
// features and errors (evaluation/exact-sums.ts); merging them writes means.json, the single run's
// float32 means bit for bit (exact sums do not depend on how the terms are grouped). Pass 2
// (`--shard I/N --means means.json`; the only pass for zero and patch ablation) scores the circuit
// and its curves on the shard's examples, recording every F as a sum over the shard's examples in
// the order scoring asks for them; the merge adds those sums in shard order and replays the same
// scoring with the merged means (a MetricModel that answers from the sums), so evaluation.json is
// the single run's with F reassociated: within about examples * 2^-53 relative, identical with one
// shard. Node sets, counts and the random baseline's draws do not depend on F, so every shard asks
// for the same Fs in the same order (the merge checks).

import path from 'node:path';
import { z } from 'zod';
import type { TaskBatch } from '../data/tasks.ts';
import type { LanguageModel } from '../model/language-model.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import type { Metric } from '../attribution/metric.ts';
import {
  AblatedModel,
  addMeanSums,
  collectMeanSums,
  meansOf,
  uniformKeepMask,
  type AblationKind,
  type KeepMask,
  type MeanSums,
  type SiteMeans,
} from '../evaluation/ablation.ts';
import { ExactSums } from '../evaluation/exact-sums.ts';
import {
  evaluate,
  type ErrorMode,
  type Evaluation,
  type EvalNode,
  type MetricModel,
  type SeriesName,
} from '../evaluation/faithfulness.ts';
import { writeEvaluationFiles, type EvaluationSettings } from '../evaluation/output.ts';
import type { OnProgress } from '../progress.ts';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';
import {
  batchRangeSchema,
  fileRefSchema,
  fileSha256,
  firstDifference,
  folderFingerprint,
  folderRefSchema,
  partHeaderShape,
  shardSlice,
  writeFileAtomic,
  type Shard,
} from './shard.ts';

export const MEANS_FILE = 'means.json';

/** What must agree between parts, and between a means file and the run that uses it. */
const identitySchema = z.object({
  inputs: z.object({
    circuit: fileRefSchema,
    neurons_circuit: fileRefSchema.nullable(),
    data: fileRefSchema,
    model: folderRefSchema,
    saes: folderRefSchema,
  }),
  options: z.object({
    ablation: z.enum(['mean', 'zero', 'patch']),
    start_layer: z.number().int(),
    errors: z.enum(['default', 'remove', 'keep']),
    thresholds: z.array(z.number()),
    series: z.array(z.string()).nullable(),
    examples: z.number().int(),
    batch_size: z.number().int(),
    seed: z.number().int(),
    sae_width: z.number().int().nullable(),
    sae_l0: z.number().nullable(),
    /** --bos / --no-bos as given (null: as circuit.json or the tokenizer says). */
    bos: z.boolean().nullable(),
  }),
});
export type EvaluateIdentity = z.infer<typeof identitySchema>;

const exactJson = z.object({
  length: z.number().int().min(0),
  bins: z.array(z.string().nullable()),
});
const nodeJson = z.object({
  site: z.string(),
  kind: z.enum(['feature', 'error']),
  feature: z.number().int().nullable(),
  position: z.number().int().nullable(),
  effect: z.number(),
});
const nodeSource = z.object({ node_threshold: z.number(), nodes: z.array(nodeJson) });
/** The shape of one scored model: what the merge's replay needs to rebuild the masks. */
const runnerJson = z.object({
  name: z.string(),
  sites: z.array(z.string()),
  widths: z.array(z.object({ site: z.string(), width: z.number().int().min(1) })),
  model_sites: z.array(z.string()),
});

const partSchema = z.object({
  ...partHeaderShape,
  stage: z.enum(['evaluate-means', 'evaluate-metrics']),
  ...identitySchema.shape,
  /** sha256 of the means file (pass 2 of mean ablation), else null. */
  means_sha256: z.string().nullable(),
  batches: batchRangeSchema,
  positions: z.number().int().min(1),
  /** This shard's examples, and the whole run's. */
  examples: z.number().int().min(1),
  total_examples: z.number().int().min(1),
  /** Pass 1: examples per position, and per dictionary set and site the exact sums. */
  counts: z.array(z.number().int()).nullable(),
  sums: z
    .array(
      z.object({
        set: z.enum(['saes', 'neurons']),
        site: z.string(),
        features: exactJson,
        errors: exactJson,
      }),
    )
    .nullable(),
  /** Pass 2: every F scoring asked for, in order: which model, the metric's sum, the examples. */
  calls: z
    .array(z.object({ runner: z.string(), sum: z.number(), examples: z.number().int() }))
    .nullable(),
  runners: z.array(runnerJson).nullable(),
  /** Whether the every-layer score uses the evaluated model itself (no site below the start). */
  all_layers_same: z.boolean().nullable(),
  circuit: nodeSource.nullable(),
  neurons: nodeSource.nullable(),
  settings: z
    .object({
      circuit: z.string(),
      neurons_circuit: z.string().nullable(),
      model: z.string(),
      saes: z.string(),
      data: z.string(),
    })
    .nullable(),
  measured: z.object({ seconds: z.number(), max_rss_bytes: z.number() }),
});
export type EvaluatePart = z.infer<typeof partSchema>;

const meansFileSchema = z.object({
  format: z.literal('sfc-means'),
  version: z.literal(1),
  ...identitySchema.shape,
  positions: z.number().int().min(1),
  examples: z.number().int().min(1),
  /** Float32 little-endian bytes, base64: features [P*F] and errors [P*d] per set and site. */
  means: z.array(
    z.object({
      set: z.enum(['saes', 'neurons']),
      site: z.string(),
      features: z.string(),
      errors: z.string(),
    }),
  ),
});
type MeansFile = z.infer<typeof meansFileSchema>;

export function evaluatePartFileName(stage: EvaluatePart['stage'], shard: Shard): string {
  return `${stage}-${shard.index}-of-${shard.count}.part.json`;
}

/** The manifest of a sharded evaluation: content hashes of the inputs and the options. */
export function evaluateIdentity(
  paths: {
    circuit: string;
    neuronsCircuit: string | null;
    data: string;
    model: string;
    saes: string;
  },
  options: EvaluateIdentity['options'],
): EvaluateIdentity {
  const file = (p: string) => ({ path: p, sha256: fileSha256(p) });
  return {
    inputs: {
      circuit: file(paths.circuit),
      neurons_circuit: paths.neuronsCircuit ? file(paths.neuronsCircuit) : null,
      data: file(paths.data),
      model: { path: paths.model, fingerprint: folderFingerprint(paths.model, false) },
      // "neurons" (identity dictionaries) is a name, not a folder.
      saes: {
        path: paths.saes,
        fingerprint: paths.saes === 'neurons' ? 'neurons' : folderFingerprint(paths.saes, true),
      },
    },
    options,
  };
}

/** Paths are where each machine found its inputs; only contents must agree. */
function withoutPaths(id: EvaluateIdentity): unknown {
  const { circuit, neurons_circuit, data, model, saes } = id.inputs;
  return {
    inputs: {
      circuit: circuit.sha256,
      neurons_circuit: neurons_circuit?.sha256 ?? null,
      data: data.sha256,
      model: model.fingerprint,
      saes: saes.fingerprint,
    },
    options: id.options,
  };
}

export interface EvaluateShardInput {
  model: LanguageModel;
  /** Every batch of the evaluation data (the shard takes its slice). */
  batches: TaskBatch[];
  /** Discovery's metric over every example. */
  metric: Metric;
  /** Dictionaries at every site of the circuit (the evaluated ones and those below the start). */
  saes: Map<string, Dictionary>;
  /** The evaluated sites (from the start layer on). */
  sites: string[];
  /** Identity dictionaries at the evaluated sites, when the neurons series is drawn. */
  neurons: Map<string, Dictionary> | null;
  circuit: { nodes: EvalNode[]; nodeThreshold: number };
  neuronsCircuit: { nodes: EvalNode[]; nodeThreshold: number } | null;
  ablation: AblationKind;
  errors: ErrorMode;
  thresholds: number[];
  series?: SeriesName[];
  seed: number;
  identity: EvaluateIdentity;
  settings: Omit<
    EvaluationSettings,
    'examples' | 'ablation' | 'startLayer' | 'errors' | 'thresholds' | 'seed'
  >;
  shard: Shard;
  /** Pass 2 of mean ablation: the means file written by merging pass 1. */
  meansFile?: string;
  out: string;
  onProgress?: OnProgress;
}

function subset(dicts: Map<string, Dictionary>, sites: string[]): Map<string, Dictionary> {
  return new Map(sites.map((s) => [s, dicts.get(s)!]));
}

function readMeansFile(file: string): MeansFile {
  const parsed = meansFileSchema.safeParse(readJsonFile(file));
  if (!parsed.success)
    throw new Error(
      `${file}: not a means file written by sfc merge (${describeIssues(parsed.error)})`,
    );
  return parsed.data;
}

function float32From(text: string, length: number, where: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length * 4)
    throw new Error(`${where}: ${bytes.length} bytes, expected ${length * 4}`);
  const out = new Float32Array(length);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

const base64Of = (a: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** The means of one dictionary set, checked against the sites and widths this run uses. */
function meansFor(
  file: string,
  means: MeansFile,
  set: 'saes' | 'neurons',
  dicts: Map<string, Dictionary>,
  model: LanguageModel,
): SiteMeans {
  const out: SiteMeans = new Map();
  const P = means.positions;
  for (const [site, dict] of dicts) {
    const entry = means.means.find((m) => m.set === set && m.site === site);
    if (!entry) throw new Error(`--means ${file}: no ${set} means at ${site}`);
    const where = `--means ${file}: ${set} at ${site}`;
    out.set(site, {
      features: float32From(entry.features, P * dict.width, `${where}, features`),
      errors: float32From(entry.errors, P * model.siteWidth(site), `${where}, errors`),
    });
  }
  return out;
}

/** A scored model whose every F is also recorded as the shard's sum (pass 2). */
class RecordingModel implements MetricModel {
  constructor(
    readonly name: string,
    private readonly inner: AblatedModel,
    private readonly calls: NonNullable<EvaluatePart['calls']>,
  ) {}
  get sites() {
    return this.inner.sites;
  }
  get positions() {
    return this.inner.positions;
  }
  get dictionaries() {
    return this.inner.dictionaries;
  }
  get model() {
    return this.inner.model;
  }
  get batches() {
    return this.inner.batches;
  }
  uniformMask(value: 0 | 1): KeepMask {
    return this.inner.uniformMask(value);
  }
  metricModel(): number {
    return this.record(this.inner.metricSum(null));
  }
  metric(keep: KeepMask): number {
    return this.record(this.inner.metricSum(keep));
  }
  shape(): z.infer<typeof runnerJson> {
    return {
      name: this.name,
      sites: this.sites,
      widths: this.sites.map((site) => ({ site, width: this.dictionaries.get(site)!.width })),
      model_sites: this.model.sites,
    };
  }
  private record(s: { sum: number; examples: number }): number {
    this.calls.push({ runner: this.name, ...s });
    return s.sum / s.examples;
  }
}

const sourceJson = (c: { nodes: EvalNode[]; nodeThreshold: number }) => ({
  node_threshold: c.nodeThreshold,
  nodes: c.nodes,
});

/** Runs one shard of an evaluation and writes its part; returns the part's file. */
export function runEvaluateShard(input: EvaluateShardInput): string {
  const t0 = performance.now();
  const { model, batches, shard, ablation } = input;
  const slice = shardSlice(batches.length, shard);
  const mine = batches.slice(slice.first, slice.end);
  const positions = Math.max(...batches.map((b) => b.clean.seqLen));
  const firstExample = batches.slice(0, slice.first).reduce((n, b) => n + b.examples.length, 0);
  const totalExamples = batches.reduce((n, b) => n + b.examples.length, 0);
  const examples = mine.reduce((n, b) => n + b.examples.length, 0);
  if (input.meansFile && ablation !== 'mean')
    throw new Error(`--means: only with --ablation mean (${ablation} ablation needs no means)`);
  const stage: EvaluatePart['stage'] =
    ablation === 'mean' && !input.meansFile ? 'evaluate-means' : 'evaluate-metrics';
  const part: EvaluatePart = {
    format: 'sfc-partial',
    version: 1,
    stage,
    shard,
    ...input.identity,
    means_sha256: null,
    batches: { ...slice, total: batches.length },
    positions,
    examples,
    total_examples: totalExamples,
    counts: null,
    sums: null,
    calls: null,
    runners: null,
    all_layers_same: null,
    circuit: null,
    neurons: null,
    settings: null,
    measured: { seconds: 0, max_rss_bytes: 0 },
  };
  if (stage === 'evaluate-means') {
    const sets: ['saes' | 'neurons', MeanSums][] = [
      ['saes', collectMeanSums(model, input.saes, mine, positions, input.onProgress)],
    ];
    if (input.neurons)
      sets.push(['neurons', collectMeanSums(model, input.neurons, mine, positions)]);
    part.counts = sets[0][1].counts;
    part.sums = sets.flatMap(([set, sums]) =>
      [...sums.sites].map(([site, s]) => ({
        set,
        site,
        features: s.features.toJSON(),
        errors: s.errors.toJSON(),
      })),
    );
  } else {
    let means: { saes: SiteMeans; neurons: SiteMeans | null } | null = null;
    if (input.meansFile) {
      const file = input.meansFile;
      const read = readMeansFile(file);
      const diff = firstDifference(withoutPaths(input.identity), withoutPaths(read));
      if (diff)
        throw new Error(
          `--means ${file}: made by merging another run's parts; ${diff} (this run vs the file)`,
        );
      if (read.positions !== positions)
        throw new Error(`--means ${file}: ${read.positions} positions, this run has ${positions}`);
      means = {
        saes: meansFor(file, read, 'saes', input.saes, model),
        neurons: input.neurons ? meansFor(file, read, 'neurons', input.neurons, model) : null,
      };
      part.means_sha256 = fileSha256(file);
    }
    const common = { ablation, metric: input.metric, positions, firstExample };
    const calls: NonNullable<EvaluatePart['calls']> = [];
    const ablated = new AblatedModel(model, subset(input.saes, input.sites), mine, {
      ...common,
      means: means?.saes,
    });
    const scored = new RecordingModel('saes', ablated, calls);
    const allSame = input.sites.length === input.saes.size;
    const allLayers = allSame
      ? scored
      : new RecordingModel(
          'all_layers',
          new AblatedModel(model, input.saes, mine, { ...common, means: means?.saes }),
          calls,
        );
    const neurons =
      input.neurons && input.neuronsCircuit
        ? new RecordingModel(
            'neurons',
            new AblatedModel(model, input.neurons, mine, {
              ...common,
              means: means?.neurons ?? undefined,
            }),
            calls,
          )
        : null;
    evaluate(
      {
        model: scored,
        circuit: input.circuit,
        neurons: neurons ? { model: neurons, circuit: input.neuronsCircuit! } : undefined,
        allLayers,
      },
      {
        thresholds: input.thresholds,
        errors: input.errors,
        series: input.series,
        seed: input.seed,
        onProgress: input.onProgress,
      },
    );
    part.calls = calls;
    part.runners = [scored, ...(allSame ? [] : [allLayers]), ...(neurons ? [neurons] : [])].map(
      (r) => r.shape(),
    );
    part.all_layers_same = allSame;
    part.circuit = sourceJson(input.circuit);
    part.neurons = input.neuronsCircuit ? sourceJson(input.neuronsCircuit) : null;
    part.settings = {
      circuit: input.settings.circuit,
      neurons_circuit: input.settings.neuronsCircuit,
      model: input.settings.model,
      saes: input.settings.saes,
      data: input.settings.data,
    };
  }
  part.measured = {
    seconds: (performance.now() - t0) / 1000,
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
  const file = path.join(input.out, evaluatePartFileName(stage, shard));
  writeFileAtomic(file, JSON.stringify(part));
  return file;
}

export function parseEvaluatePart(value: unknown, file: string): EvaluatePart {
  const parsed = partSchema.safeParse(value);
  if (!parsed.success)
    throw new Error(`${file}: not an evaluation part file (${describeIssues(parsed.error)})`);
  const part = parsed.data;
  const needs: (keyof EvaluatePart)[] =
    part.stage === 'evaluate-means'
      ? ['counts', 'sums']
      : ['calls', 'runners', 'all_layers_same', 'circuit', 'settings'];
  const missing = needs.filter((k) => part[k] === null);
  if (missing.length > 0)
    throw new Error(`${file}: an ${part.stage} part without ${missing.join(', ')}`);
  if (part.counts && part.counts.length !== part.positions)
    throw new Error(`${file}: ${part.counts.length} counts for ${part.positions} positions`);
  if (part.calls?.some((c) => c.examples !== part.examples))
    throw new Error(`${file}: a recorded F is not over the part's ${part.examples} examples`);
  return part;
}

/** What must agree between the parts of one pass (not the shard's own slice, sums, timing). */
export function evaluateIdentityOf(part: EvaluatePart): unknown {
  return {
    stage: part.stage,
    ...(withoutPaths(part) as object),
    means_sha256: part.means_sha256,
    shards: part.shard.count,
    batches: part.batches.total,
    positions: part.positions,
    total_examples: part.total_examples,
    sites: part.sums?.map((s) => `${s.set}:${s.site}:${s.features.length}:${s.errors.length}`),
    runners: part.runners,
    all_layers_same: part.all_layers_same,
    calls: part.calls?.map((c) => c.runner),
    circuit: part.circuit,
    neurons: part.neurons,
  };
}

/** A scored model that answers every F from the merged sums, in the order they were recorded. */
class ReplayModel implements MetricModel {
  readonly name: string;
  readonly sites: string[];
  readonly dictionaries: Map<string, { width: number }>;
  readonly model: { sites: string[] };
  constructor(
    shape: z.infer<typeof runnerJson>,
    readonly positions: number,
    readonly batches: unknown,
    private readonly next: (runner: string) => number,
  ) {
    this.name = shape.name;
    this.sites = shape.sites;
    this.dictionaries = new Map(shape.widths.map((w) => [w.site, { width: w.width }]));
    this.model = { sites: shape.model_sites };
  }
  uniformMask(value: 0 | 1): KeepMask {
    return uniformKeepMask(this.sites, this.dictionaries, this.positions, value);
  }
  metricModel(): number {
    return this.next(this.name);
  }
  metric(): number {
    return this.next(this.name);
  }
}

export interface EvaluateMerge {
  /** means.json (pass 1) or evaluation.json. */
  file: string;
  evaluation: Evaluation | null;
  nodeThreshold: number | null;
  startLayer: number;
  nextStep: string | null;
}

/** Finishes a sharded evaluation from its parts (sorted by shard, checked to belong together). */
export async function mergeEvaluateParts(
  parts: EvaluatePart[],
  out: string,
): Promise<EvaluateMerge> {
  const first = parts[0];
  const identity: EvaluateIdentity = { inputs: first.inputs, options: first.options };
  if (first.stage === 'evaluate-means') {
    const merged = new Map<string, MeanSums>();
    for (const p of parts) {
      const bySet = new Map<string, MeanSums>();
      for (const s of p.sums!) {
        const sums = bySet.get(s.set) ?? {
          positions: p.positions,
          counts: p.counts!,
          sites: new Map(),
        };
        const where = `shard ${p.shard.index}/${p.shard.count}, ${s.set} at ${s.site}`;
        sums.sites.set(s.site, {
          features: ExactSums.fromJSON(s.features, `${where}, features`),
          errors: ExactSums.fromJSON(s.errors, `${where}, errors`),
        });
        bySet.set(s.set, sums);
      }
      for (const [set, sums] of bySet) {
        const into = merged.get(set);
        if (into) addMeanSums(into, sums);
        else merged.set(set, { ...sums, counts: [...sums.counts] });
      }
    }
    const means: MeansFile = {
      format: 'sfc-means',
      version: 1,
      ...identity,
      positions: first.positions,
      examples: first.total_examples,
      means: [...merged].flatMap(([set, sums]) =>
        [...meansOf(sums)].map(([site, m]) => ({
          set: set as 'saes' | 'neurons',
          site,
          features: base64Of(m.features),
          errors: base64Of(m.errors),
        })),
      ),
    };
    const file = path.join(out, MEANS_FILE);
    writeFileAtomic(file, JSON.stringify(means));
    return {
      file,
      evaluation: null,
      nodeThreshold: null,
      startLayer: first.options.start_layer,
      nextStep: `the scoring pass: rerun every shard with --means ${file}, then sfc merge its parts`,
    };
  }
  // Every F: the shards' sums added in shard order over all examples.
  const n = first.calls!.length;
  const values = Array.from({ length: n }, (_, k) => {
    let sum = 0;
    let examples = 0;
    for (const p of parts) {
      sum += p.calls![k].sum;
      examples += p.calls![k].examples;
    }
    return sum / examples;
  });
  let at = 0;
  const next = (runner: string) => {
    const call = first.calls![at];
    if (!call || call.runner !== runner)
      throw new Error(
        `merge: scoring asked for F #${at} of ${runner}, the parts recorded ${call ? call.runner : 'no more'}`,
      );
    return values[at++];
  };
  const batches = {};
  const runners = new Map(
    first.runners!.map((r) => [r.name, new ReplayModel(r, first.positions, batches, next)]),
  );
  const scored = runners.get('saes')!;
  const neurons = runners.get('neurons');
  const o = first.options;
  const evaluation = evaluate(
    {
      model: scored,
      circuit: { nodes: first.circuit!.nodes, nodeThreshold: first.circuit!.node_threshold },
      neurons:
        neurons && first.neurons
          ? {
              model: neurons,
              circuit: { nodes: first.neurons.nodes, nodeThreshold: first.neurons.node_threshold },
            }
          : undefined,
      allLayers: first.all_layers_same ? scored : runners.get('all_layers'),
    },
    {
      thresholds: o.thresholds,
      errors: o.errors,
      series: (o.series as SeriesName[] | null) ?? undefined,
      seed: o.seed,
    },
  );
  if (at !== n) throw new Error(`merge: scoring used ${at} of the parts' ${n} recorded Fs`);
  const s = first.settings!;
  await writeEvaluationFiles(
    out,
    {
      circuit: s.circuit,
      neuronsCircuit: s.neurons_circuit,
      model: s.model,
      saes: s.saes,
      data: s.data,
      examples: first.total_examples,
      ablation: o.ablation,
      startLayer: o.start_layer,
      errors: o.errors,
      thresholds: o.thresholds,
      seed: o.seed,
    },
    evaluation,
    first.circuit!.node_threshold,
  );
  return {
    file: path.join(out, 'evaluation.json'),
    evaluation,
    nodeThreshold: first.circuit!.node_threshold,
    startLayer: o.start_layer,
    nextStep: null,
  };
}
