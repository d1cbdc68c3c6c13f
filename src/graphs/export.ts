// The graph file that Neuronpedia's graph viewer and circuit-tracer's local server load: metadata
// (slug, scan, prompt_tokens, prompt), qParams, nodes and links, with node ids and feature types
// as circuit-tracer writes them (features "L_F_P", errors "L_-1_P", tokens "E_V_P", logits at
// layer n+1). Only nodes and edges that survive pruning are written. The format and its reader:
// neuronpedia-file.ts.

import type { AttributionGraph } from './graph.ts';
import type { NeuronpediaGraph } from './neuronpedia-file.ts';
import type { PrunedGraph } from './prune.ts';

const cantor = (x: number, y: number) => ((x + y) * (x + y + 1)) / 2 + y;

export interface ExportOptions {
  slug: string;
  scan: string;
  prompt: string;
  /** The display string of each prompt token and of any vocabulary id. */
  tokenString: (id: number) => string;
  numLayers: number;
  nodeThreshold: number;
  edgeThreshold: number;
  /** A label per feature node index, when there is one. */
  clerp?: (node: number) => string | undefined;
}

export function toNeuronpedia(
  g: AttributionGraph,
  pruned: PrunedGraph,
  o: ExportOptions,
): NeuronpediaGraph {
  const n = g.nodes.length;
  const ids: string[] = [];
  const nodes: NeuronpediaGraph['nodes'] = [];
  g.nodes.forEach((node, i) => {
    const influence = pruned.cumulativeInfluence[i];
    let out: NeuronpediaGraph['nodes'][number];
    if (node.kind === 'feature')
      out = {
        node_id: `${node.layer}_${node.feature}_${node.position}`,
        feature: cantor(node.layer, node.feature),
        layer: String(node.layer),
        ctx_idx: node.position,
        feature_type: 'cross layer transcoder',
        jsNodeId: `${node.layer}_${node.feature}-0`,
        clerp: o.clerp?.(i) ?? '',
        influence,
        activation: node.activation,
      };
    else if (node.kind === 'error')
      out = {
        node_id: `${node.layer}_-1_${node.position}`,
        feature: -1,
        layer: String(node.layer),
        ctx_idx: node.position,
        feature_type: 'mlp reconstruction error',
        jsNodeId: `${node.layer}_-1-${node.position}`,
        clerp: '',
        influence,
      };
    else if (node.kind === 'token')
      out = {
        node_id: `E_${node.token}_${node.position}`,
        feature: node.position,
        layer: 'E',
        ctx_idx: node.position,
        feature_type: 'embedding',
        jsNodeId: `E_${node.token}-${node.position}`,
        clerp: '',
        influence,
      };
    else {
      const layer = String(o.numLayers + 1);
      out = {
        node_id: `${layer}_${node.token}_${node.position}`,
        feature: node.token,
        layer,
        ctx_idx: node.position,
        feature_type: 'logit',
        jsNodeId: `L_${node.token}-${node.position}`,
        clerp: `Output "${o.tokenString(node.token)}" (p=${node.probability.toFixed(3)})`,
        token_prob: node.probability,
        is_target_logit: g.nodes.findIndex((m) => m.kind === 'logit') === i,
      };
    }
    ids.push(out.node_id);
    if (pruned.nodeMask[i]) nodes.push(out);
  });
  const links: NeuronpediaGraph['links'] = [];
  const row = new Map(g.targets.map((t, k) => [t, k]));
  for (let t = 0; t < n; t++)
    for (let s = 0; s < n; s++)
      if (pruned.edgeMask[t * n + s] && pruned.nodeMask[t] && pruned.nodeMask[s]) {
        const k = row.get(t)!;
        links.push({ source: ids[s], target: ids[t], weight: g.adjacency[k * n + s] });
      }
  return {
    metadata: {
      slug: o.slug,
      scan: o.scan,
      transcoder_list: [],
      prompt_tokens: g.ids.map(o.tokenString),
      prompt: o.prompt,
      node_threshold: o.nodeThreshold,
      schema_version: 1,
      pruning_settings: { node_threshold: o.nodeThreshold, edge_threshold: o.edgeThreshold },
      info: { generator: { name: 'sparse-feature-circuits (sfc graph)' } },
    },
    qParams: { pinnedIds: [], supernodes: [], linkType: 'both', clickedId: '', sg_pos: '' },
    nodes,
    links,
  };
}
