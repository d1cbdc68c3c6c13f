// Graphs made elsewhere (circuit-tracer, Neuronpedia) read into our own graph file's shape, so the
// report can show them beside ours. Node kinds come from feature_type as circuit-tracer writes it:
// "cross layer transcoder" (also per-layer transcoder features), "mlp reconstruction error",
// "embedding", "logit"; any other feature type (e.g. attention features) is kept as a feature of
// its layer. A feature's index within its layer is the middle of its node_id ("L_F_P"), or the
// Cantor pairing in `feature` undone when the id has another form.

import type { NeuronpediaGraph } from './neuronpedia-file.ts';
import type { GraphNode } from './graph.ts';

/** Our own graph file (as `sfc graph` writes <slug>.graph.json), for an imported graph. */
export interface ImportedGraph {
  prompt: string;
  /** Display strings of the prompt tokens (metadata.prompt_tokens). */
  tokens: string[];
  /** Token id per position where an embedding node names it, else -1. */
  ids: number[];
  nodes: GraphNode[];
  /** [target, source, weight] by node index, as in our own file. */
  edges: [number, number, number][];
  /** Each node's influence (null where the file has none) and all nodes kept (the file is pruned). */
  influence: (number | null)[];
  kept: number[];
  /** The file's node_id and feature_type of each node, to show and to export back. */
  nodeIds: string[];
  featureTypes: string[];
  imported: { slug: string; scan: string; generator: string | null };
}

/** (layer, index) from circuit-tracer's Cantor pairing ((x + y)(x + y + 1)/2 + y). */
export function cantorUnpair(z: number): [number, number] {
  let w = Math.floor((Math.sqrt(8 * z + 1) - 1) / 2);
  // the square root may land one off for large z
  while (((w + 1) * (w + 2)) / 2 <= z) w++;
  while ((w * (w + 1)) / 2 > z) w--;
  const y = z - (w * (w + 1)) / 2;
  return [w - y, y];
}

/** Our graph from a validated Neuronpedia/circuit-tracer graph; errors name the file and field. */
export function importGraph(g: NeuronpediaGraph, file: string): ImportedGraph {
  const T = g.metadata.prompt_tokens.length;
  const ids = new Array<number>(T).fill(-1);
  const fail = (i: number, field: string, what: string): never => {
    throw new Error(`${file}: nodes.${i}.${field} ${what}`);
  };
  const intLayer = (n: NeuronpediaGraph['nodes'][number], i: number): number => {
    const L = typeof n.layer === 'number' ? n.layer : Number(n.layer);
    if (!Number.isInteger(L) || L < 0)
      fail(
        i,
        'layer',
        `is ${JSON.stringify(n.layer)}, expected a layer number for a ${n.feature_type} node`,
      );
    return L;
  };
  const idPart = (n: NeuronpediaGraph['nodes'][number], k: number): number | undefined => {
    const parts = n.node_id.split('_');
    const v = parts.length === 3 ? Number(parts[k]) : NaN;
    return Number.isInteger(v) ? v : undefined;
  };
  const nodes: GraphNode[] = g.nodes.map((n, i) => {
    const position = n.ctx_idx;
    if (position < 0 || position >= T)
      fail(i, 'ctx_idx', `is ${position}, outside the ${T} prompt_tokens`);
    switch (n.feature_type) {
      case 'mlp reconstruction error':
        return { kind: 'error', layer: intLayer(n, i), position };
      case 'embedding': {
        const token = idPart(n, 1);
        if (token === undefined || !n.node_id.startsWith('E_'))
          fail(i, 'node_id', `is "${n.node_id}", expected E_<token>_<position> for an embedding`);
        ids[position] = token!;
        return { kind: 'token', position, token: token! };
      }
      case 'logit': {
        const token = n.feature ?? idPart(n, 1);
        if (token === undefined || token < 0)
          fail(i, 'feature', `is ${n.feature}, expected the logit's token id`);
        const p = (n as { token_prob?: unknown }).token_prob;
        return {
          kind: 'logit',
          position,
          token: token!,
          probability: typeof p === 'number' ? p : 0,
        };
      }
      default: {
        const layer = intLayer(n, i);
        let feature = idPart(n, 0) === layer ? idPart(n, 1) : undefined;
        if (feature === undefined && Number.isSafeInteger(n.feature) && n.feature! >= 0) {
          const [l, f] = cantorUnpair(n.feature!);
          if (l === layer) feature = f;
        }
        if (feature === undefined)
          fail(
            i,
            'node_id',
            `is "${n.node_id}" and feature ${n.feature}: neither gives the index of a layer-${layer} feature`,
          );
        return {
          kind: 'feature',
          layer,
          position,
          feature: feature!,
          activation: n.activation ?? 0,
        };
      }
    }
  });
  const index = new Map(g.nodes.map((n, i) => [n.node_id, i]));
  const edges: [number, number, number][] = g.links.map((l) => [
    index.get(l.target)!,
    index.get(l.source)!,
    l.weight,
  ]);
  const generator = (g.metadata as { info?: { generator?: { name?: unknown } } }).info?.generator
    ?.name;
  return {
    prompt: g.metadata.prompt,
    tokens: g.metadata.prompt_tokens,
    ids,
    nodes,
    edges,
    influence: g.nodes.map((n) => n.influence ?? null),
    kept: g.nodes.map(() => 1),
    nodeIds: g.nodes.map((n) => n.node_id),
    featureTypes: g.nodes.map((n) => n.feature_type),
    imported: {
      slug: g.metadata.slug,
      scan: g.metadata.scan,
      generator: typeof generator === 'string' ? generator : null,
    },
  };
}
