// Circuit discovery end to end: node effects for every batch of examples, then edges, summed into
// EffectSums and turned into a circuit. See docs/discover.md.

import type { OnProgress } from '../progress.ts';
import type { TaskExample } from '../data/tasks.ts';
import type { LanguageModel } from '../model/language-model.ts';
import { EffectSums, buildCircuit, type CircuitHeader } from '../circuit/build.ts';
import type { Aggregation, Circuit, Method } from '../circuit/circuit.ts';
import { directUpstream, seedBytes, siteEdges, siteSeeds, type Downstream } from './edges.ts';
import { logitDiffMetric, type Metric } from './metric.ts';
import {
  finishBatch,
  groupNodes,
  siteGroups,
  startBatch,
  type BatchNodes,
  type NodeContext,
} from './nodes.ts';
import { ResidentDictionaries, dictionarySource, type Dictionaries } from './resident.ts';
import { Tails } from './tails.ts';

export interface DiscoverOptions {
  method?: Method; // default 'ig'
  steps?: number; // default 10
  aggregation?: Aggregation; // default 'none'
  nodeThreshold?: number; // default 0.1
  edgeThreshold?: number; // default 0.01
  nodesOnly?: boolean;
  batchSize?: number; // default 10
  /**
   * The sites with dictionaries, whose nodes are found (default: every site of the model). Edges
   * join them along direct paths through the sites left out.
   */
  sites?: string[];
  /** Default: the paper's logit difference (logitDiffMetric). */
  metric?: Metric;
  /**
   * Only the batches first..end-1 (of batchSize examples, in task order): one shard. The metric,
   * positions and checks still see every example, so each batch computes what it would in a
   * whole run.
   */
  batches?: { first: number; end: number };
  /**
   * The circuit's nodes (per site, by EffectSums node number) whose edges are computed, instead
   * of those above the threshold in this run's own sums: a shard's edges need the node set of
   * every shard (src/shards/).
   */
  circuit?: Uint8Array[];
  /**
   * Dictionaries kept in memory at most (loaded again when needed after being freed); default
   * the fewest the stages need: the largest group of sites whose nodes are found together, and a
   * downstream site with its direct upstream sites for edges. Only a source that can free
   * dictionaries (an SAE library) is bounded by it.
   */
  resident?: number;
  onNodes?: OnProgress;
  onEdges?: OnProgress;
}

export interface StageTimes {
  /** Seconds. */
  nodes: number;
  edges: number;
}

export interface Discovery {
  sums: EffectSums;
  /** Per batch: what the node stage found (kept for inspection and tests). */
  batches: BatchNodes[];
  metric: { clean: number; patch: number | null };
  /** The raw sums of m over the examples run (a shard's part of the means). */
  metricSums: { clean: number; patch: number | null };
  times: StageTimes;
  sites: string[];
  /**
   * Most dictionaries in memory at once, and how often one was taken from its source while not
   * in memory (loaded, for a library); absent for sums merged from shards.
   */
  dictionaries?: { peak: number; loads: number; capacity: { nodes: number; edges: number } };
}

/** Checks the data and returns the number of positions (T under aggregation none). */
function checkExamples(examples: TaskExample[], aggregation: Aggregation): number {
  if (examples.length === 0) throw new Error('discover: no examples');
  const withPatch = examples.filter((e) => e.patch !== null).length;
  if (withPatch !== 0 && withPatch !== examples.length)
    throw new Error(
      `discover: ${withPatch} of ${examples.length} examples have a patch_prefix; either all or none must (none = zero ablation)`,
    );
  const lengths = new Map<number, number>();
  for (const e of examples) lengths.set(e.clean.length, (lengths.get(e.clean.length) ?? 0) + 1);
  if (aggregation === 'none' && lengths.size > 1) {
    const list = [...lengths]
      .sort((a, b) => a[0] - b[0])
      .map(([len, n]) => `${len} tokens (${n})`)
      .join(', ');
    throw new Error(
      `discover: aggregation none keeps positions apart, so all examples must have the same length; got ${list}. Use aggregation sum, or keep one length`,
    );
  }
  return Math.max(...lengths.keys());
}

function readoutIndex(model: LanguageModel, readout: string): number {
  const i = model.sites.indexOf(readout);
  if (i < 0)
    throw new Error(
      `discover: the metric reads site ${readout}, which is not a site of this model (${model.sites.join(', ')})`,
    );
  return i;
}

/**
 * Node effects (and unless nodesOnly, edges) of `examples` on `model` with a dictionary at every
 * site. The returned sums turn into a circuit with `toCircuit`. The node stage goes through the
 * sites one group at a time over all batches, and the edges one downstream site at a time, so
 * that only the dictionaries of the sites at work are in memory (see DiscoverOptions.resident).
 */
export function discover(
  model: LanguageModel,
  dictionaries: Dictionaries,
  examples: TaskExample[],
  options: DiscoverOptions = {},
): Discovery {
  const method = options.method ?? 'ig';
  const steps = options.steps ?? 10;
  const aggregation = options.aggregation ?? 'none';
  const nodeThreshold = options.nodeThreshold ?? 0.1;
  const batchSize = options.batchSize ?? 10;
  if (!['ig', 'attrib', 'exact'].includes(method))
    throw new Error(`discover: method must be ig, attrib or exact, got ${method}`);
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`discover: steps must be a positive integer, got ${steps}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`discover: batch size must be a positive integer, got ${batchSize}`);
  const positions = checkExamples(examples, aggregation);
  const metric = options.metric ?? logitDiffMetric(examples);
  const wanted = options.sites ?? model.sites;
  for (const site of wanted)
    if (!model.sites.includes(site))
      throw new Error(`discover: ${site} is not a site of this model (${model.sites.join(', ')})`);
  // In model order. A metric that reads a residual site depends on that site and the ones below
  // it only.
  const upTo = metric.readout ? readoutIndex(model, metric.readout) + 1 : model.sites.length;
  const sites = model.sites.slice(0, upTo).filter((site) => wanted.includes(site));
  if (sites.length === 0)
    throw new Error(
      `discover: no site with a dictionary${metric.readout ? ` up to ${metric.readout}` : ''}`,
    );
  if (
    options.resident !== undefined &&
    !(Number.isInteger(options.resident) && options.resident >= 1)
  )
    throw new Error(`discover: resident must be a positive integer, got ${options.resident}`);
  const source = dictionarySource(dictionaries);
  // Every dictionary is checked against its site when it is taken; its width is read without
  // loading it when its files declare it.
  const take = (site: string) => {
    const dict = source.get(site);
    const width = model.siteWidth(site);
    if (dict.dIn !== width)
      throw new Error(
        `SAE for site ${site} reads width ${dict.dIn}, but the model's ${site} is ${width} wide`,
      );
    return dict;
  };
  const drop = source.drop?.bind(source);
  const checked = new ResidentDictionaries({ get: take, drop });
  const widths = sites.map((site) => {
    const declared = source.declaredWidth?.(site) ?? null;
    if (declared !== null) return { site, width: declared };
    checked.hold([site]);
    return { site, width: checked.get(site).width };
  });
  checked.releaseAll();
  const ctx: NodeContext = {
    tails: new Tails(model, metric.vocab, metric.readout),
    metric,
    dictionaries: (site) => checked.get(site),
    sites,
  };
  const groups = siteGroups(ctx);
  const upstream = new Map(
    sites.map((site) => [site, directUpstream(model, site, sites).map((u) => u.site)]),
  );
  const capacity = {
    nodes: Math.max(options.resident ?? 1, ...groups.map((g) => g.length)),
    edges: options.nodesOnly
      ? 0
      : Math.max(options.resident ?? 1, ...sites.map((s) => upstream.get(s)!.length)),
  };
  const sums = new EffectSums(widths, aggregation, positions);

  let starts: number[] = [];
  for (let s = 0; s < examples.length; s += batchSize) starts.push(s);
  if (options.batches) {
    const { first, end } = options.batches;
    if (!(
      Number.isInteger(first) &&
      Number.isInteger(end) &&
      0 <= first &&
      first < end &&
      end <= starts.length
    ))
      throw new Error(
        `discover: batches ${first}..${end - 1} outside the task's ${starts.length} batches`,
      );
    starts = starts.slice(first, end);
  }
  const total = starts.length * sites.length;
  const t0 = performance.now();
  let mClean = 0;
  let mPatch = 0;
  let sitesDone = 0;
  // The model runs of every batch first (no dictionary needed), then each group of sites over all
  // batches with only that group's dictionaries in memory.
  const runs = starts.map((start) =>
    startBatch(
      ctx,
      examples,
      Array.from({ length: Math.min(batchSize, examples.length - start) }, (_, i) => start + i),
    ),
  );
  checked.capacity = capacity.nodes;
  for (const group of groups) {
    checked.hold(group);
    for (const r of runs)
      groupNodes(ctx, r, group, {
        method,
        steps,
        // Edges use the IG gradient even when exact gives the node effects.
        gradSteps: method === 'ig' || (method === 'exact' && !options.nodesOnly) ? steps : 1,
        onSite: () => options.onNodes?.(++sitesDone, total),
      });
  }
  const batches: BatchNodes[] = runs.map((r) => finishBatch(ctx, r));
  for (const bn of batches) {
    for (const [site, sn] of bn.sites) {
      const s = sums.index(site);
      for (let n = 0; n < bn.B * bn.T; n++) {
        const t = n % bn.T;
        for (let e = sn.delta.rowStart[n]; e < sn.delta.rowStart[n + 1]; e++)
          if (sn.effect[e] !== 0) sums.addNode(s, sums.node(s, t, sn.delta.index[e]), sn.effect[e]);
        if (sn.errorEffect[n] !== 0) sums.addNode(s, sums.node(s, t, null), sn.errorEffect[n]);
      }
    }
    for (let b = 0; b < bn.B; b++) {
      mClean += bn.mClean[b];
      mPatch += bn.mPatch ? bn.mPatch[b] : 0;
    }
    sums.examples += bn.B;
  }
  const t1 = performance.now();
  if (!options.nodesOnly) {
    let done = 0;
    // Only edges between the circuit's nodes are kept, so only those are computed.
    const circuit = options.circuit ?? sums.nodeMask(nodeThreshold);
    // One downstream site at a time over all batches. Its own dictionary gives the seeds only,
    // so the seeds of as many batches as take no more memory than that dictionary are computed
    // first, then their edges with only the direct upstream sites' dictionaries in memory (in
    // model order, the next site shares most of them).
    checked.capacity = capacity.edges;
    const widthOf = new Map(widths.map((w) => [w.site, w.width]));
    for (const site of sites) {
      const ups = upstream.get(site)!;
      const edgeOptions = { nodeThreshold, circuit };
      const budget = 2 * widthOf.get(site)! * model.siteWidth(site) * 4;
      for (let b = 0; b < batches.length;) {
        const first = b;
        const downs: (Downstream[] | null)[] = [];
        if (ups.length) checked.hold([site]);
        for (let bytes = 0; b < batches.length && (b === first || bytes < budget); b++) {
          const down = siteSeeds(ctx, batches[b], sums, site, edgeOptions);
          downs.push(down);
          bytes += seedBytes(down);
        }
        checked.hold(ups);
        downs.forEach((down, i) =>
          siteEdges(ctx, batches[first + i], sums, site, down, {
            ...edgeOptions,
            onSite: () => options.onEdges?.(++done, total),
          }),
        );
      }
    }
  }
  checked.releaseAll();
  const t2 = performance.now();
  const N = sums.examples;
  return {
    sums,
    batches,
    metric: { clean: mClean / N, patch: examples[0].patch ? mPatch / N : null },
    metricSums: { clean: mClean, patch: examples[0].patch ? mPatch : null },
    times: { nodes: (t1 - t0) / 1000, edges: (t2 - t1) / 1000 },
    sites,
    dictionaries: { peak: checked.peak, loads: checked.loads, capacity },
  };
}

export interface CircuitInfo {
  model: string;
  saes: string;
  data: string;
  /** Token strings of the first example. */
  tokens: string[];
  /** Whether the prefixes start with the BOS token (written to the file when given). */
  bos?: boolean;
}

/** The circuit file's content for a discovery run with these options. */
export function toCircuit(
  discovery: Discovery,
  info: CircuitInfo,
  options: DiscoverOptions,
): Circuit {
  const header: CircuitHeader = {
    version: 1,
    model: info.model,
    saes: info.saes,
    data: info.data,
    method: options.method ?? 'ig',
    steps: options.method === 'attrib' ? 1 : (options.steps ?? 10),
    aggregation: options.aggregation ?? 'none',
    examples: discovery.sums.examples,
    node_threshold: options.nodeThreshold ?? 0.1,
    edge_threshold: options.edgeThreshold ?? 0.01,
    sites: discovery.sites,
    tokens: info.tokens,
    ...(info.bos === undefined ? {} : { bos: info.bos }),
    metric: discovery.metric,
  };
  return buildCircuit(header, discovery.sums, {
    lastSite: discovery.sites[discovery.sites.length - 1],
    withEdges: !options.nodesOnly,
  });
}
