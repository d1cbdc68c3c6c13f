// Sharded discovery: `sfc discover --shard I/N` runs a contiguous slice of the task's batches and
// writes a partial file (raw float64 sums, counts and a manifest); `sfc merge` adds the parts in
// shard order and builds circuit.json as a single run would.
//
// Edges need two passes. Which edges are computed depends on the circuit's node set (only edges
// between circuit nodes are), which is chosen from the mean effects over every example; and the
// edge weights of a node are computed in products whose sizes depend on how many other nodes are
// kept, so edges computed against a shard's own (or no) node set differ from the single run's by
// float32 rounding, far beyond 1e-9. Hence: pass 1 (`--shard I/N`) sums node effects; merging it
// writes nodes.json, the node set; pass 2 (`--shard I/N --nodes nodes.json`) recomputes each
// batch's node effects (the downstream nodes of an edge are chosen per example) and sums the
// edges between the given nodes; merging it writes circuit.json. With --nodes-only pass 1 is all.
//
// Sums: each shard sums its batches in task order; the merge adds the shards' sums in shard order.
// That reassociates a float64 sum of float32 terms, so means agree with the single run to within
// about (examples) * 2^-53 * sum|x| / |sum x| relative (test/shards/discover.test.ts measures it).

import path from 'node:path';
import { z } from 'zod';
import type { TaskExample } from '../data/tasks.ts';
import type { LanguageModel } from '../model/language-model.ts';
import type { Dictionaries } from '../attribution/resident.ts';
import {
  discover,
  toCircuit,
  type DiscoverOptions,
  type Discovery,
} from '../attribution/discover.ts';
import { EffectSums } from '../circuit/build.ts';
import { writeCircuit, type Circuit } from '../circuit/circuit.ts';
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

export const NODES_FILE = 'nodes.json';

/** The manifest fields that must agree between parts (and with a nodes file). */
const identitySchema = z.object({
  inputs: z.object({
    data: fileRefSchema,
    model: folderRefSchema,
    saes: folderRefSchema,
  }),
  options: z.object({
    method: z.enum(['ig', 'attrib', 'exact']),
    steps: z.number(),
    aggregation: z.enum(['none', 'sum']),
    node_threshold: z.number(),
    edge_threshold: z.number(),
    nodes_only: z.boolean(),
    batch_size: z.number().int(),
    examples: z.number().int(),
    sae_width: z.number().int().nullable(),
    /** --sites as resolved by the CLI, null for every site. */
    sites: z.array(z.string()).nullable(),
    /** Whether the prompts started with a BOS token (circuit.json's bos). */
    bos: z.boolean(),
  }),
});
export type DiscoverIdentity = z.infer<typeof identitySchema>;

const triple = z.tuple([z.number().int(), z.number().int(), z.number().int()]);
const partSchema = z.object({
  ...partHeaderShape,
  stage: z.enum(['discover-nodes', 'discover-edges']),
  ...identitySchema.shape,
  /** sha256 of the nodes file (pass 2), null in pass 1. */
  nodes_sha256: z.string().nullable(),
  batches: batchRangeSchema,
  widths: z.array(z.object({ site: z.string(), width: z.number().int().min(1) })),
  positions: z.number().int().min(1),
  tokens: z.array(z.string()),
  examples: z.number().int().min(1),
  metric: z.object({ clean: z.number(), patch: z.number().nullable() }),
  node_sums: z.array(z.array(z.tuple([z.number().int(), z.number()]))),
  edge_sums: z.array(z.tuple([...triple.def.items, z.number().int(), z.number()])),
  /** What this shard took: seconds of its stages and peak resident memory (bytes). */
  measured: z.object({ seconds: z.number(), max_rss_bytes: z.number() }),
});
export type DiscoverPart = z.infer<typeof partSchema>;

const nodesFileSchema = z.object({
  format: z.literal('sfc-nodes'),
  version: z.literal(1),
  ...identitySchema.shape,
  widths: z.array(z.object({ site: z.string(), width: z.number().int().min(1) })),
  positions: z.number().int().min(1),
  /** Per site (in `widths` order), the node numbers (EffectSums numbering) of the circuit. */
  nodes: z.array(z.array(z.number().int().min(0))),
});
type NodesFile = z.infer<typeof nodesFileSchema>;

export function partFileName(stage: DiscoverPart['stage'], shard: Shard): string {
  return `${stage}-${shard.index}-of-${shard.count}.part.json`;
}

export interface DiscoverShardInput {
  model: LanguageModel;
  dictionaries: Dictionaries;
  examples: TaskExample[];
  /** Token strings of the task's first example (circuit.json's tokens). */
  tokens: string[];
  /** Whether the task's prompts start with a BOS token. */
  bos: boolean;
  options: DiscoverOptions;
  paths: { model: string; saes: string; data: string };
  /** --examples and --sae-width as given: part of what the parts must agree on. */
  limit: number;
  saeWidth: number | null;
  shard: Shard;
  /** Pass 2: the nodes file written by merging pass 1. */
  nodesFile?: string;
  out: string;
}

export function discoverIdentity(input: DiscoverShardInput): DiscoverIdentity {
  const o = input.options;
  return {
    inputs: {
      data: { path: input.paths.data, sha256: fileSha256(input.paths.data) },
      model: { path: input.paths.model, fingerprint: folderFingerprint(input.paths.model, false) },
      saes: { path: input.paths.saes, fingerprint: folderFingerprint(input.paths.saes, true) },
    },
    options: {
      method: o.method ?? 'ig',
      steps: o.steps ?? 10,
      aggregation: o.aggregation ?? 'none',
      node_threshold: o.nodeThreshold ?? 0.1,
      edge_threshold: o.edgeThreshold ?? 0.01,
      nodes_only: o.nodesOnly === true,
      batch_size: o.batchSize ?? 10,
      examples: input.limit,
      sae_width: input.saeWidth,
      sites: o.sites ?? null,
      bos: input.bos,
    },
  };
}

/** Paths are where each machine found its inputs; only contents must agree. */
function withoutPaths(id: DiscoverIdentity): unknown {
  const { data, model, saes } = id.inputs;
  return {
    inputs: { data: data.sha256, model: model.fingerprint, saes: saes.fingerprint },
    options: id.options,
  };
}

export function readNodesFile(file: string): NodesFile {
  const parsed = nodesFileSchema.safeParse(readJsonFile(file));
  if (!parsed.success)
    throw new Error(
      `${file}: not a nodes file written by sfc merge (${describeIssues(parsed.error)})`,
    );
  return parsed.data;
}

/** Runs one shard of a discovery and writes its part; returns the part's file. */
export function runDiscoverShard(input: DiscoverShardInput): string {
  const t0 = performance.now();
  const batchSize = input.options.batchSize ?? 10;
  const total = Math.ceil(input.examples.length / batchSize);
  const batches = shardSlice(total, input.shard);
  const stage: DiscoverPart['stage'] = input.nodesFile ? 'discover-edges' : 'discover-nodes';
  const identity = discoverIdentity(input);
  // Pass 1 of a run with edges sums nodes only: edges wait for the node set of every shard.
  const options: DiscoverOptions = { ...input.options, batches, nodesOnly: !input.nodesFile };
  let nodesSha: string | null = null;
  if (input.nodesFile) {
    if (input.options.nodesOnly)
      throw new Error(
        '--nodes gives the node set for the edges pass; it cannot go with --nodes-only',
      );
    const nodes = readNodesFile(input.nodesFile);
    const diff = firstDifference(withoutPaths(identity), withoutPaths(nodes));
    if (diff)
      throw new Error(
        `--nodes ${input.nodesFile}: made by merging another run's parts; ${diff} (this run vs the file)`,
      );
    nodesSha = fileSha256(input.nodesFile);
    // Pass 2 runs the node stage again: the edges need each batch's effects and gradients.
    options.circuit = nodes.widths.map(({ site, width }, s) => {
      const mask = new Uint8Array(
        (nodes.options.aggregation === 'sum' ? 1 : nodes.positions) * (width + 1),
      );
      for (const node of nodes.nodes[s]) {
        if (node >= mask.length)
          throw new Error(`--nodes ${input.nodesFile}: node ${node} outside site ${site}`);
        mask[node] = 1;
      }
      return mask;
    });
  }
  const run = discover(input.model, input.dictionaries, input.examples, options);
  if (options.circuit) {
    const got = run.sums.sites.map((s) => `${s.site}:${s.width}`).join(',');
    const want = readNodesFile(input.nodesFile!)
      .widths.map((s) => `${s.site}:${s.width}`)
      .join(',');
    if (got !== want)
      throw new Error(`--nodes ${input.nodesFile}: sites ${want}, but this run has ${got}`);
  }
  const raw = run.sums.rawSums();
  const part: DiscoverPart = {
    format: 'sfc-partial',
    version: 1,
    stage,
    shard: input.shard,
    ...identity,
    nodes_sha256: nodesSha,
    batches: { ...batches, total },
    widths: run.sums.sites.map((s) => ({ site: s.site, width: s.width })),
    positions: run.sums.positions,
    tokens: input.tokens,
    examples: run.sums.examples,
    metric: run.metricSums,
    node_sums: raw.nodes,
    edge_sums: raw.edges,
    measured: {
      seconds: (performance.now() - t0) / 1000,
      max_rss_bytes: process.resourceUsage().maxRSS * 1024,
    },
  };
  const file = path.join(input.out, partFileName(stage, input.shard));
  writeFileAtomic(file, JSON.stringify(part));
  return file;
}

export function parseDiscoverPart(value: unknown, file: string): DiscoverPart {
  const parsed = partSchema.safeParse(value);
  if (!parsed.success)
    throw new Error(`${file}: not a discovery part file (${describeIssues(parsed.error)})`);
  return parsed.data;
}

/** The merged sums of parts already checked to belong together, added in shard order. */
function mergedSums(parts: DiscoverPart[]): { sums: EffectSums; metric: Discovery['metric'] } {
  const first = parts[0];
  const sums = new EffectSums(first.widths, first.options.aggregation, first.positions);
  let clean = 0;
  let patch = 0;
  for (const p of parts) {
    sums.addRawSums({ nodes: p.node_sums, edges: p.edge_sums }, p.examples);
    clean += p.metric.clean;
    patch += p.metric.patch ?? 0;
  }
  const N = sums.examples;
  return {
    sums,
    metric: { clean: clean / N, patch: first.metric.patch === null ? null : patch / N },
  };
}

function optionsOf(part: DiscoverPart): DiscoverOptions {
  const o = part.options;
  return {
    method: o.method,
    steps: o.steps,
    aggregation: o.aggregation,
    nodeThreshold: o.node_threshold,
    edgeThreshold: o.edge_threshold,
    nodesOnly: o.nodes_only,
    batchSize: o.batch_size,
  };
}

export interface DiscoverMerge {
  /** circuit.json (nodes-only pass 1, or pass 2) or nodes.json (pass 1 of a run with edges). */
  file: string;
  circuit: Circuit | null;
  nextStep: string | null;
}

/**
 * Finishes a discovery from its parts (sorted by shard, checked to belong together): pass 1
 * with edges to come writes nodes.json, otherwise circuit.json.
 */
export function mergeDiscoverParts(
  parts: DiscoverPart[],
  files: string[],
  out: string,
): DiscoverMerge {
  const first = parts[0];
  const { sums, metric } = mergedSums(parts);
  const options = optionsOf(first);
  const sites = first.widths.map((w) => w.site);
  if (first.stage === 'discover-nodes' && !first.options.nodes_only) {
    const mask = sums.nodeMask(options.nodeThreshold!);
    const nodesFile: NodesFile = {
      format: 'sfc-nodes',
      version: 1,
      inputs: first.inputs,
      options: first.options,
      widths: first.widths,
      positions: first.positions,
      nodes: mask.map((m) => {
        const list: number[] = [];
        m.forEach((on, node) => {
          if (on) list.push(node);
        });
        return list;
      }),
    };
    const file = path.join(out, NODES_FILE);
    writeFileAtomic(file, JSON.stringify(nodesFile));
    return {
      file,
      circuit: null,
      nextStep: `the edges pass: rerun every shard with --nodes ${file}, then sfc merge its parts`,
    };
  }
  if (first.stage === 'discover-edges') {
    // The node sums of pass 2 are pass 1's again (same batches, same order): the node set they
    // choose must be the one the edges were computed for.
    const shas = new Set(parts.map((p) => p.nodes_sha256));
    if (shas.size > 1)
      throw new Error(
        `the parts were run with different --nodes files (${files[0]} and ${files[parts.findIndex((p) => p.nodes_sha256 !== first.nodes_sha256)]})`,
      );
  }
  const discovery: Discovery = {
    sums,
    batches: [],
    metric,
    metricSums: { clean: 0, patch: null },
    times: { nodes: 0, edges: 0 },
    sites,
  };
  const circuit = toCircuit(
    discovery,
    {
      model: first.inputs.model.path,
      saes: first.inputs.saes.path,
      data: first.inputs.data.path,
      tokens: first.tokens,
      bos: first.options.bos,
    },
    options,
  );
  return { file: writeCircuit(out, circuit), circuit, nextStep: null };
}
