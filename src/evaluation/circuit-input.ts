// The parts of a circuit file (circuit.json from `sfc discover`, read and validated by
// src/circuit) that evaluation uses: where the model, SAEs and data were, the aggregation, the
// node threshold and the nodes. Edges are not needed: faithfulness is a property of node sets.

import { CIRCUIT_FILE, readCircuit, type Circuit } from '../circuit/circuit.ts';
import type { EvalNode } from './faithfulness.ts';
import { fileInFolder } from '../io/text-file.ts';

export interface CircuitForEvaluation {
  /** The circuit.json path (a folder given on the command line resolves to its circuit.json). */
  file: string;
  model: string;
  saes: string;
  data: string;
  aggregation: Circuit['aggregation'];
  method: Circuit['method'];
  steps: number;
  /** Examples discovery used (the first usable ones of `data`). */
  examples: number;
  nodeThreshold: number;
  /** The first discovery example's tokens: the circuit's positions when aggregation is none. */
  tokens: string[];
  /** Whether discovery's prefixes started with the BOS token (undefined: not recorded). */
  bos?: boolean;
  /** The sites discovery had dictionaries at (every site of the model unless it was given some). */
  sites: string[];
  nodes: EvalNode[];
}

/** Reads `file` (a circuit.json or a folder holding one) with src/circuit's validation. */
export function readCircuitForEvaluation(file: string): CircuitForEvaluation {
  return forEvaluation(readCircuit(file), fileInFolder(file, CIRCUIT_FILE));
}

/** The evaluation view of a circuit already in memory; `file` is where it lives. */
export function forEvaluation(c: Circuit, file: string): CircuitForEvaluation {
  return {
    file,
    model: c.model,
    saes: c.saes,
    data: c.data,
    aggregation: c.aggregation,
    method: c.method,
    steps: c.steps,
    examples: c.examples,
    nodeThreshold: c.node_threshold,
    tokens: c.tokens,
    bos: c.bos,
    sites: c.sites,
    nodes: c.nodes.map((n) => ({
      site: n.site,
      kind: n.kind,
      feature: n.feature,
      position: n.position,
      effect: n.effect,
    })),
  };
}
