// Aggregating per-example node effects and edge weights into a circuit: sums over examples (and,
// with aggregation `sum`, over positions), then means, thresholds and node/edge lists.
//
// A node is (site, position, feature) with feature F (the site's width) standing for the error;
// within a site it is numbered position·(F+1) + feature, position 0 for every token under `sum`.

import { parseTransformerSite } from '../model/sites.ts';
import {
  METRIC_NODE,
  nodeId,
  type Aggregation,
  type Circuit,
  type CircuitEdge,
  type CircuitNode,
} from './circuit.ts';

export interface SiteWidth {
  site: string;
  /** F: number of features (the error node is one more). */
  width: number;
}

export class EffectSums {
  readonly sites: SiteWidth[];
  readonly aggregation: Aggregation;
  /** Positions kept apart: T under `none`, 1 under `sum`. */
  readonly positions: number;
  /** Examples added so far (the divisor of the means). */
  examples = 0;
  private siteIndex = new Map<string, number>();
  private nodeSums: Float64Array[]; // per site [positions·(F+1)]
  // Per (source site, target site): target node -> source node -> sum (small-integer keys).
  private edgeSums: Map<number, Map<number, number>>[];

  constructor(sites: SiteWidth[], aggregation: Aggregation, positions: number) {
    if (aggregation === 'none' && !(Number.isInteger(positions) && positions >= 1))
      throw new Error(
        `EffectSums: aggregation none needs the number of positions, got ${positions}`,
      );
    this.sites = sites;
    this.aggregation = aggregation;
    this.positions = aggregation === 'sum' ? 1 : positions;
    sites.forEach((s, i) => this.siteIndex.set(s.site, i));
    this.nodeSums = sites.map((s) => new Float64Array(this.positions * (s.width + 1)));
    this.edgeSums = Array.from({ length: sites.length * sites.length }, () => new Map());
  }

  index(site: string): number {
    const i = this.siteIndex.get(site);
    if (i === undefined)
      throw new Error(`no site ${site} among ${this.sites.map((s) => s.site).join(', ')}`);
    return i;
  }

  /** Node number within its site; feature null is the error node. */
  node(siteIndex: number, position: number, feature: number | null): number {
    const F = this.sites[siteIndex].width;
    const p = this.aggregation === 'sum' ? 0 : position;
    if (!(p >= 0 && p < this.positions))
      throw new Error(`position ${position} outside 0..${this.positions - 1} (aggregation none)`);
    return p * (F + 1) + (feature ?? F);
  }

  addNode(siteIndex: number, node: number, effect: number): void {
    this.nodeSums[siteIndex][node] += effect;
  }

  addEdge(source: number, sourceNode: number, target: number, targetNode: number, w: number): void {
    const sums = this.edgeSources(source, target, targetNode);
    sums.set(sourceNode, (sums.get(sourceNode) ?? 0) + w);
  }

  /** The running sums of the edges into one target node from one source site (source node -> sum). */
  edgeSources(source: number, target: number, targetNode: number): Map<number, number> {
    const pair = this.edgeSums[source * this.sites.length + target];
    let sums = pair.get(targetNode);
    if (!sums) {
      sums = new Map();
      pair.set(targetNode, sums);
    }
    return sums;
  }

  private describe(siteIndex: number, node: number): Omit<CircuitNode, 'effect'> {
    const { site, width: F } = this.sites[siteIndex];
    const feature = node % (F + 1) === F ? null : node % (F + 1);
    const position = this.aggregation === 'sum' ? null : Math.floor(node / (F + 1));
    return {
      id: nodeId(site, feature, position),
      site,
      layer: parseTransformerSite(site, Number.MAX_SAFE_INTEGER).layer,
      kind: feature === null ? 'error' : 'feature',
      feature,
      position,
    };
  }

  /** Nodes whose |mean effect| exceeds the threshold, by site, position, feature (error last). */
  nodes(threshold: number): CircuitNode[] {
    const out: CircuitNode[] = [];
    this.nodeMask(threshold).forEach((mask, s) => {
      for (let node = 0; node < mask.length; node++)
        if (mask[node]) out.push({ ...this.describe(s, node), effect: this.nodeEffect(s, node) });
    });
    return out;
  }

  /** Per site, 1 for the nodes whose |mean effect| exceeds the threshold (by node number). */
  nodeMask(threshold: number): Uint8Array[] {
    const examples = Math.max(1, this.examples);
    return this.nodeSums.map((sums) => {
      const mask = new Uint8Array(sums.length);
      for (let node = 0; node < sums.length; node++) {
        const effect = sums[node] / examples;
        if (Math.abs(effect) > threshold && effect !== 0) mask[node] = 1;
      }
      return mask;
    });
  }

  /** Mean effect of one node (0 when never added). */
  nodeEffect(siteIndex: number, node: number): number {
    return this.nodeSums[siteIndex][node] / Math.max(1, this.examples);
  }

  /** Edges whose |mean weight| exceeds the threshold and whose ends are both in `nodeIds`. */
  edges(threshold: number, nodeIds: Set<string>): CircuitEdge[] {
    const out: CircuitEdge[] = [];
    const S = this.sites.length;
    this.edgeSums.forEach((byTarget, pair) => {
      const [source, target] = [Math.floor(pair / S), pair % S];
      for (const targetNode of [...byTarget.keys()].sort((a, b) => a - b)) {
        const to = this.describe(target, targetNode).id;
        if (!nodeIds.has(to)) continue;
        const sums = byTarget.get(targetNode)!;
        for (const sourceNode of [...sums.keys()].sort((a, b) => a - b)) {
          const weight = sums.get(sourceNode)! / Math.max(1, this.examples);
          if (!(Math.abs(weight) > threshold)) continue;
          const from = this.describe(source, sourceNode).id;
          if (nodeIds.has(from)) out.push({ source: from, target: to, weight });
        }
      }
    });
    return out;
  }

  /**
   * The raw sums as plain data (non-zero node sums as [node, sum] per site; edges as [source site,
   * target site, target node, source node, sum]), for a shard's partial file. Float64 numbers
   * survive JSON exactly (shortest round-trip text).
   */
  rawSums(): { nodes: [number, number][][]; edges: [number, number, number, number, number][] } {
    const nodes = this.nodeSums.map((sums) => {
      const list: [number, number][] = [];
      sums.forEach((v, node) => {
        if (v !== 0) list.push([node, v]);
      });
      return list;
    });
    const edges: [number, number, number, number, number][] = [];
    const S = this.sites.length;
    this.edgeSums.forEach((byTarget, pair) => {
      for (const targetNode of [...byTarget.keys()].sort((a, b) => a - b)) {
        const sums = byTarget.get(targetNode)!;
        for (const sourceNode of [...sums.keys()].sort((a, b) => a - b))
          edges.push([
            Math.floor(pair / S),
            pair % S,
            targetNode,
            sourceNode,
            sums.get(sourceNode)!,
          ]);
      }
    });
    return { nodes, edges };
  }

  /** Adds raw sums written by `rawSums` (another shard's), checking their node numbers. */
  addRawSums(raw: ReturnType<EffectSums['rawSums']>, examples: number): void {
    if (raw.nodes.length !== this.sites.length)
      throw new Error(`raw sums: ${raw.nodes.length} sites, expected ${this.sites.length}`);
    raw.nodes.forEach((list, s) => {
      const sums = this.nodeSums[s];
      for (const [node, v] of list) {
        if (!(Number.isInteger(node) && node >= 0 && node < sums.length))
          throw new Error(`raw sums: node ${node} outside site ${this.sites[s].site}`);
        sums[node] += v;
      }
    });
    const S = this.sites.length;
    for (const [source, target, targetNode, sourceNode, v] of raw.edges) {
      if (!(source >= 0 && source < S && target >= 0 && target < S))
        throw new Error(`raw sums: edge between sites ${source} and ${target} outside 0..${S - 1}`);
      this.addEdge(source, sourceNode, target, targetNode, v);
    }
    this.examples += examples;
  }

  /** Number of distinct edges with a sum (before thresholds). */
  edgeCount(): number {
    let n = 0;
    for (const byTarget of this.edgeSums) for (const sums of byTarget.values()) n += sums.size;
    return n;
  }
}

export type CircuitHeader = Omit<Circuit, 'nodes' | 'edges'>;

/**
 * The circuit: nodes above the node threshold; edges above the edge threshold between them; and
 * the last residual site's nodes joined to the metric "y" with their effects as weights.
 */
export function buildCircuit(
  header: CircuitHeader,
  sums: EffectSums,
  options: { lastSite: string; withEdges: boolean },
): Circuit {
  const nodes = sums.nodes(header.node_threshold);
  const edges: CircuitEdge[] = [];
  if (options.withEdges) {
    const ids = new Set(nodes.map((n) => n.id));
    edges.push(...sums.edges(header.edge_threshold, ids));
    for (const n of nodes)
      if (n.site === options.lastSite && Math.abs(n.effect) > header.edge_threshold)
        edges.push({ source: n.id, target: METRIC_NODE, weight: n.effect });
  }
  return { ...header, nodes, edges };
}
