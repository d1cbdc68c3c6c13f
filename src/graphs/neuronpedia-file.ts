// The graph file format Neuronpedia's graph viewer and circuit-tracer's local server load, and
// its reader. The zod schema restates the required fields and types of Neuronpedia's published
// graph-schema.json (tests check our exports against the published schema itself); it reads
// graphs made by circuit-tracer, Neuronpedia or `sfc graph`. A format only: the viewer reads it
// without reaching the engine (export.ts, which writes it from a graph, does).

import fs from 'node:fs';
import { z } from 'zod';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';

const nodeSchema = z.looseObject({
  node_id: z.string(),
  feature: z.number().int().nullable(),
  layer: z.union([z.string(), z.number().int()]),
  ctx_idx: z.number().int(),
  feature_type: z.string(),
  jsNodeId: z.string(),
  clerp: z.string(),
  influence: z.number().nullable().optional(),
  activation: z.number().nullable().optional(),
});

export const neuronpediaGraphSchema = z.looseObject({
  metadata: z.looseObject({
    slug: z.string(),
    scan: z.string(),
    prompt_tokens: z.array(z.string()),
    prompt: z.string(),
    node_threshold: z.number().optional(),
  }),
  qParams: z.looseObject({
    pinnedIds: z.array(z.string()).optional(),
    supernodes: z.array(z.unknown()).optional(),
    linkType: z.string().optional(),
    clickedId: z.string().optional(),
    sg_pos: z.string().optional(),
  }),
  nodes: z.array(nodeSchema),
  links: z.array(z.looseObject({ source: z.string(), target: z.string(), weight: z.number() })),
});
export type NeuronpediaGraph = z.infer<typeof neuronpediaGraphSchema>;

/** Largest graph file read (circuit-tracer's biggest graphs are tens of MB). */
export const MAX_GRAPH_FILE_BYTES = 256 * 1024 * 1024;

/**
 * Reads a graph JSON written by circuit-tracer, Neuronpedia or `sfc graph`: the fields Neuronpedia's
 * schema requires (extra fields are kept), unique node ids, and links between nodes of the file;
 * a file over `maxBytes` is refused before it is read.
 */
export function readNeuronpediaGraph(
  file: string,
  maxBytes = MAX_GRAPH_FILE_BYTES,
): NeuronpediaGraph {
  const size = fs.statSync(file, { throwIfNoEntry: false })?.size;
  if (size !== undefined && size > maxBytes)
    throw new Error(`${file}: ${size} bytes, more than the ${maxBytes} a graph file may have`);
  const parsed = neuronpediaGraphSchema.safeParse(readJsonFile(file));
  if (!parsed.success) throw new Error(`${file}: ${describeIssues(parsed.error, { limit: 5 })}`);
  const ids = new Set<string>();
  parsed.data.nodes.forEach((node, i) => {
    if (ids.has(node.node_id))
      throw new Error(`${file}: nodes.${i}.node_id ${node.node_id} is used by an earlier node too`);
    ids.add(node.node_id);
  });
  parsed.data.links.forEach((link, i) => {
    for (const end of ['source', 'target'] as const)
      if (!ids.has(link[end]))
        throw new Error(`${file}: links.${i}.${end} is ${link[end]}, which no node has as node_id`);
  });
  return parsed.data;
}
