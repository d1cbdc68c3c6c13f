// circuit.json: what `sfc discover` writes and what evaluation and the viewer read.
//
//   {"version": 1, "model", "saes", "data", "method", "steps", "aggregation", "examples",
//    "node_threshold", "edge_threshold", "sites": [...], "tokens": [...], "bos"?,
//    "metric": {"clean", "patch"},
//    "nodes": [{"id": "resid_1/17@3", "site", "layer", "kind", "feature", "position", "effect"}],
//    "edges": [{"source": id, "target": id | "y", "weight"}]}
//
// Node ids are `<site>/<feature>@<position>`; the error node uses `ε` for the feature number;
// with aggregation `sum` there is no position and no `@...` part. Every file is validated on
// read: the schema (zod), then the cross-references (ids match their fields, edges name nodes).

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { fileInFolder, readJsonFile } from '../io/text-file.ts';
import { parseTransformerSite } from '../model/sites.ts';
import { describeIssues } from '../io/validation.ts';

export const CIRCUIT_FILE = 'circuit.json';
/** The target of the edges from the last residual site to the metric. */
export const METRIC_NODE = 'y';
const ERROR_SYMBOL = 'ε';

const nodeSchema = z.object({
  id: z.string().min(1),
  site: z.string().min(1),
  layer: z.number().int().min(-1),
  kind: z.enum(['feature', 'error']),
  feature: z.number().int().min(0).nullable(),
  position: z.number().int().min(0).nullable(),
  effect: z.number(),
});

const edgeSchema = z.object({
  source: z.string().min(1),
  target: z.string().min(1),
  weight: z.number(),
});

const circuitSchema = z.object({
  version: z.literal(1),
  model: z.string(),
  saes: z.string(),
  data: z.string(),
  method: z.enum(['ig', 'attrib', 'exact']),
  steps: z.number().int().min(1),
  aggregation: z.enum(['none', 'sum']),
  examples: z.number().int().min(1),
  node_threshold: z.number().min(0),
  edge_threshold: z.number().min(0),
  sites: z.array(z.string()),
  tokens: z.array(z.string()),
  /** Whether the task prefixes started with the BOS token (absent in older files). */
  bos: z.boolean().optional(),
  metric: z.object({ clean: z.number(), patch: z.number().nullable() }),
  nodes: z.array(nodeSchema),
  edges: z.array(edgeSchema),
});

export type Circuit = z.infer<typeof circuitSchema>;
export type CircuitNode = z.infer<typeof nodeSchema>;
export type CircuitEdge = z.infer<typeof edgeSchema>;
export type Method = Circuit['method'];
export type Aggregation = Circuit['aggregation'];

/** "resid_1/17@3", "resid_1/ε@3"; no "@..." when position is null (aggregation sum). */
export function nodeId(site: string, feature: number | null, position: number | null): string {
  const what = feature === null ? ERROR_SYMBOL : String(feature);
  return position === null ? `${site}/${what}` : `${site}/${what}@${position}`;
}

/** The parts of a node id; throws naming the id when it is not one. */
export function parseNodeId(id: string): {
  site: string;
  feature: number | null;
  position: number | null;
} {
  const match = /^([a-z]+(?:_[a-z]+)*(?:_\d+)?)\/(\d+|ε)(?:@(\d+))?$/.exec(id);
  if (!match)
    throw new Error(
      `"${id}" is not a node id; expected <site>/<feature or ε>[@<position>], e.g. resid_1/17@3`,
    );
  return {
    site: match[1],
    feature: match[2] === ERROR_SYMBOL ? null : Number(match[2]),
    position: match[3] === undefined ? null : Number(match[3]),
  };
}

/**
 * Checks a parsed JSON value as a circuit; `file` names it in errors. Beyond the schema: each id
 * matches its site/feature/position, sites and layers are consistent, positions are null exactly
 * with aggregation sum, ids are unique and every edge joins listed nodes (or a node and "y").
 */
export function validateCircuit(json: unknown, file: string): Circuit {
  const parsed = circuitSchema.safeParse(json);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error, { limit: 5 });
    throw new Error(`${file}: not a circuit file (${problems})`);
  }
  const c = parsed.data;
  const fail = (where: string, what: string): never => {
    throw new Error(`${file}: ${where}: ${what}`);
  };
  // The sites name the model's depth: resid_5 means at least 6 layers. Any engine's sites
  // (attn_z_L included) are valid.
  const numLayers = Math.max(0, ...c.sites.map((s) => Number(/_(\d+)$/.exec(s)?.[1] ?? -1) + 1));
  c.sites.forEach((s, i) => {
    try {
      parseTransformerSite(s, numLayers);
    } catch (e) {
      fail(`sites.${i}`, (e as Error).message);
    }
  });
  const sites = new Set(c.sites);
  const ids = new Set<string>();
  c.nodes.forEach((n, i) => {
    const where = `nodes.${i} (${n.id})`;
    if (!sites.has(n.site)) fail(where, `site ${n.site} is not in "sites"`);
    const layer = parseTransformerSite(n.site, numLayers).layer;
    if (n.layer !== layer) fail(where, `layer ${n.layer} does not match site ${n.site} (${layer})`);
    if ((n.kind === 'error') !== (n.feature === null))
      fail(where, `kind ${n.kind} needs feature ${n.kind === 'error' ? 'null' : 'a number'}`);
    if ((c.aggregation === 'sum') !== (n.position === null))
      fail(
        where,
        `position must be ${c.aggregation === 'sum' ? 'null' : 'a number'} with aggregation ${c.aggregation}`,
      );
    if (n.id !== nodeId(n.site, n.feature, n.position))
      fail(where, `id should be ${nodeId(n.site, n.feature, n.position)}`);
    if (ids.has(n.id)) fail(where, 'duplicate node id');
    ids.add(n.id);
  });
  c.edges.forEach((e, i) => {
    const where = `edges.${i} (${e.source} -> ${e.target})`;
    if (!ids.has(e.source)) fail(where, `source ${e.source} is not a node of the circuit`);
    if (e.target !== METRIC_NODE && !ids.has(e.target))
      fail(where, `target ${e.target} is not a node of the circuit or "${METRIC_NODE}"`);
  });
  return c;
}

/** Reads and validates `file` (a circuit.json, or a folder holding one). */
export function readCircuit(file: string): Circuit {
  const target = fileInFolder(file, CIRCUIT_FILE);
  const json = readJsonFile(target);
  return validateCircuit(json, target);
}

/** Validates and writes `dir/circuit.json` (creating dir); returns the file's path. */
export function writeCircuit(dir: string, circuit: Circuit): string {
  const file = path.join(dir, CIRCUIT_FILE);
  validateCircuit(circuit, file);
  fs.mkdirSync(dir, { recursive: true });
  // One node or edge per line: diffable and still plain JSON.
  const list = (items: unknown[]) =>
    items.length === 0
      ? '[]'
      : `[\n${items.map((x) => `    ${JSON.stringify(x)}`).join(',\n')}\n  ]`;
  const { nodes, edges, ...head } = circuit;
  const headText = JSON.stringify(head, null, 2).slice(0, -2); // drop the closing "\n}"
  const text = `${headText},\n  "nodes": ${list(nodes)},\n  "edges": ${list(edges)}\n}\n`;
  fs.writeFileSync(file, text);
  return file;
}
