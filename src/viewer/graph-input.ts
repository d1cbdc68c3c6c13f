// Attribution graphs for the report: the Neuronpedia / circuit-tracer graph JSON that `sfc graph`
// writes (<dir>/graphs/<slug>.json) or that came from elsewhere (`--graph FILE`). Read through
// src/graphs/neuronpedia-file.ts's schema, then bounded (a graph made elsewhere is hostile input) and
// reduced to what the page draws: one row per layer (embedding -1 at the bottom, the logits on
// top), one column per prompt token, links by node index.

import fs from 'node:fs';
import path from 'node:path';
import { readNeuronpediaGraph, type NeuronpediaGraph } from '../graphs/neuronpedia-file.ts';

/** The folder under a report's folder where `sfc graph` (as `npm start` runs it) writes. */
export const GRAPHS_DIR = 'graphs';

/** Bounds before and after parsing: far above what a browser can draw usefully, far below harm. */
export const GRAPH_LIMITS = {
  bytes: 64 << 20,
  nodes: 20_000,
  links: 400_000,
  tokens: 4096,
  /** Labels (clerps) and token strings longer than this are cut, with a warning. */
  text: 400,
  /** Graphs shown in one report. */
  graphs: 12,
};

export type GraphNodeKind = 'feature' | 'error' | 'token' | 'logit';

export interface GraphViewNode {
  id: string;
  kind: GraphNodeKind;
  /** -1 for token embeddings; the file's logit layer for logits. */
  layer: number;
  position: number;
  /** Transcoder feature index as the node id names it ("L_F_P"), else null. */
  feature: number | null;
  clerp: string;
  /** Cumulative influence as the file gives it (0 = most influential), null when absent. */
  influence: number | null;
  activation: number | null;
}

export interface GraphView {
  file: string;
  slug: string;
  scan: string;
  prompt: string;
  tokens: string[];
  /** The logit row's layer (one above the highest feature layer when the file has no logits). */
  logitLayer: number;
  nodes: GraphViewNode[];
  /** [source index, target index, weight]. */
  links: [number, number, number][];
  /** The file's saved supernodes (qParams.supernodes: [name, ...node ids]), when readable. */
  supernodes: { name: string; members: string[] }[];
}

function kindOf(featureType: string): GraphNodeKind {
  const t = featureType.toLowerCase();
  if (t === 'embedding') return 'token';
  if (t === 'logit') return 'logit';
  if (t.includes('error')) return 'error';
  return 'feature';
}

/** Reads, bounds and reduces one graph file; `warn` receives what was cut or skipped. */
export function readGraphView(file: string, warn: (message: string) => void): GraphView {
  const g: NeuronpediaGraph = readNeuronpediaGraph(file, GRAPH_LIMITS.bytes);
  if (g.nodes.length > GRAPH_LIMITS.nodes)
    throw new Error(`${file}: ${g.nodes.length} nodes, more than ${GRAPH_LIMITS.nodes}`);
  if (g.links.length > GRAPH_LIMITS.links)
    throw new Error(`${file}: ${g.links.length} links, more than ${GRAPH_LIMITS.links}`);
  if (g.metadata.prompt_tokens.length > GRAPH_LIMITS.tokens)
    throw new Error(
      `${file}: ${g.metadata.prompt_tokens.length} prompt tokens, more than ${GRAPH_LIMITS.tokens}`,
    );
  let cut = 0;
  const text = (s: string) => {
    if (s.length <= GRAPH_LIMITS.text) return s;
    cut++;
    return s.slice(0, GRAPH_LIMITS.text - 1) + '…';
  };
  const finite = (v: number | null | undefined) =>
    v !== null && v !== undefined && Number.isFinite(v) ? v : null;
  const T = g.metadata.prompt_tokens.length;
  let maxLayer = -1;
  let logitLayer: number | null = null;
  const nodes: GraphViewNode[] = g.nodes.map((n, i) => {
    const kind = kindOf(n.feature_type);
    const layer = n.layer === 'E' ? -1 : Number(n.layer);
    if (!Number.isInteger(layer) || layer < -1 || layer > 1000)
      throw new Error(
        `${file}: nodes.${i}.layer is ${JSON.stringify(n.layer)}, expected "E" or a layer number`,
      );
    if (n.ctx_idx < 0 || (T > 0 && n.ctx_idx >= T))
      throw new Error(
        `${file}: nodes.${i}.ctx_idx is ${n.ctx_idx}, outside the ${T} prompt tokens`,
      );
    if (kind === 'logit') logitLayer = Math.max(logitLayer ?? layer, layer);
    else maxLayer = Math.max(maxLayer, layer);
    // circuit-tracer's feature ids are "layer_feature_position"; `feature` itself is a pairing.
    const parts = n.node_id.split('_');
    const feature = kind === 'feature' && parts.length === 3 ? Number(parts[1]) : NaN;
    return {
      id: n.node_id,
      kind,
      layer,
      position: n.ctx_idx,
      feature: Number.isInteger(feature) ? feature : null,
      clerp: text(n.clerp),
      influence: finite(n.influence),
      activation: finite(n.activation),
    };
  });
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  if (index.size !== nodes.length) throw new Error(`${file}: two nodes share a node_id`);
  const links: [number, number, number][] = [];
  let skipped = 0;
  for (const l of g.links) {
    if (!Number.isFinite(l.weight) || l.weight === 0) {
      skipped++;
      continue;
    }
    links.push([index.get(l.source)!, index.get(l.target)!, l.weight]);
  }
  const supernodes: GraphView['supernodes'] = [];
  for (const s of g.qParams.supernodes ?? []) {
    // Neuronpedia saves each supernode as [name, ...node ids]; others are left out.
    if (!Array.isArray(s) || s.length < 3 || !s.every((x) => typeof x === 'string')) continue;
    const [name, ...members] = s as string[];
    const known = members.filter((m) => index.has(m));
    if (known.length >= 2) supernodes.push({ name: text(name), members: known });
  }
  if (cut > 0)
    warn(`${file}: ${cut} labels or tokens longer than ${GRAPH_LIMITS.text} characters were cut`);
  if (skipped > 0) warn(`${file}: ${skipped} links with a zero or non-finite weight left out`);
  return {
    file,
    slug: text(g.metadata.slug),
    scan: text(g.metadata.scan),
    prompt: text(g.metadata.prompt),
    tokens: g.metadata.prompt_tokens.map(text),
    logitLayer: logitLayer ?? maxLayer + 1,
    nodes,
    links,
    supernodes,
  };
}

/** The graph files a report shows by default: <dir>/graphs/*.json, without `sfc graph`'s own *.graph.json. */
export function defaultGraphFiles(dir: string): string[] {
  const folder = path.join(dir, GRAPHS_DIR);
  if (!fs.existsSync(folder)) return [];
  return fs
    .readdirSync(folder)
    .filter((f) => f.endsWith('.json') && !f.endsWith('.graph.json'))
    .sort()
    .map((f) => path.join(folder, f));
}

/**
 * The graphs of `files`. Given by the user (`strict`), a file that does not read is an error; found
 * in the folder, it becomes a warning rather than a failed report.
 */
export function readGraphViews(files: string[], warnings: string[], strict: boolean): GraphView[] {
  if (files.length > GRAPH_LIMITS.graphs)
    warnings.push(
      `${files.length} graph files: showing the first ${GRAPH_LIMITS.graphs} (${files.slice(GRAPH_LIMITS.graphs).join(', ')} left out)`,
    );
  const out: GraphView[] = [];
  for (const file of files.slice(0, GRAPH_LIMITS.graphs)) {
    try {
      out.push(readGraphView(file, (w) => warnings.push(w)));
    } catch (e) {
      if (strict) throw e;
      warnings.push(`graph not shown: ${(e as Error).message}`);
    }
  }
  return out;
}
