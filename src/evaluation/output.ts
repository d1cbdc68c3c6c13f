// evaluation.json (every point of every series, with the settings that produced them) and the
// table `sfc evaluate` prints.

import fs from 'node:fs';
import path from 'node:path';
import type { CircuitScore, Evaluation } from './faithfulness.ts';
import { curveSpec, renderSvg } from './plots.ts';

export interface EvaluationSettings {
  circuit: string;
  neuronsCircuit: string | null;
  model: string;
  saes: string;
  data: string;
  examples: number;
  ablation: string;
  startLayer: number;
  errors: string;
  thresholds: number[];
  seed: number;
}

/** What F averages, as evaluation.json states it. */
export const METRIC_DEFINITION =
  'mean over examples of m = logit[patch answer] - logit[clean answer] at the last token ' +
  '(-logit[clean answer] without patch answers), as in discovery';

function scoreJson(s: CircuitScore) {
  return {
    nodes: s.nodes,
    feature_nodes: s.featureNodes,
    error_nodes: s.errorNodes,
    f_circuit: s.fCircuit,
    f_complement: s.fComplement,
    faithfulness: Number.isFinite(s.faithfulness) ? s.faithfulness : null,
    completeness: Number.isFinite(s.completeness) ? s.completeness : null,
  };
}

/** The evaluation object written to evaluation.json and printed by --json (snake_case keys). */
export function evaluationJson(settings: EvaluationSettings, e: Evaluation, nodeThreshold: number) {
  return {
    version: 1,
    circuit: settings.circuit,
    neurons_circuit: settings.neuronsCircuit,
    model: settings.model,
    saes: settings.saes,
    data: settings.data,
    examples: settings.examples,
    ablation: settings.ablation,
    start_layer: settings.startLayer,
    errors: settings.errors,
    thresholds: settings.thresholds,
    seed: settings.seed,
    // m as discovery defines it (attribution/metric.ts), so these read like circuit.json's metric.
    metric: {
      definition: METRIC_DEFINITION,
      model: e.fModel,
      empty: e.fEmpty,
      empty_all_layers: e.allLayers?.fEmpty ?? null,
    },
    circuit_score: {
      node_threshold: nodeThreshold,
      ...scoreJson(e.circuit),
      nodes_below_start_layer: e.nodesBelowStartLayer,
    },
    // The same circuit with every site spliced and ablated (start layer -1: embed included).
    circuit_score_all_layers: e.allLayers
      ? {
          node_threshold: nodeThreshold,
          ...scoreJson(e.allLayers.circuit),
          nodes_below_start_layer: 0,
        }
      : null,
    series: e.series.map((s) => ({
      name: s.name,
      label: s.label,
      f_empty: s.fEmpty,
      skipped_thresholds: s.skipped,
      points: s.points.map((p) => ({ threshold: p.threshold, ...scoreJson(p) })),
    })),
  };
}

const fixed = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(header), ...rows.map(line)];
}

/** Human-readable summary: the metric, the circuit as saved, then one block per series. */
export function formatEvaluation(
  e: Evaluation,
  nodeThreshold: number,
  startLayer?: number,
): string {
  const out: string[] = [];
  out.push(
    `F(M) model ${fixed(e.fModel, 4)}   F(∅) empty circuit ${fixed(e.fEmpty, 4)}   ` +
      `(F = mean of m = logit[patch] - logit[clean], as in discovery)`,
  );
  const c = e.circuit;
  const layers = startLayer === undefined ? '' : `layers >= ${startLayer}: `;
  out.push(
    `circuit as saved (|effect| > ${nodeThreshold}), ${layers}${c.nodes} nodes (${c.featureNodes} features, ${c.errorNodes} errors)  ` +
      `faithfulness ${fixed(c.faithfulness)}  completeness ${fixed(c.completeness)}`,
  );
  if (e.allLayers) {
    const a = e.allLayers.circuit;
    out.push(
      `circuit as saved, every layer (embed included): ${a.nodes} nodes (${a.featureNodes} features, ${a.errorNodes} errors)  ` +
        `faithfulness ${fixed(a.faithfulness)}  completeness ${fixed(a.completeness)}   F(∅) ${fixed(e.allLayers.fEmpty, 4)}`,
    );
  }
  if (e.nodesBelowStartLayer > 0)
    out.push(
      `${e.nodesBelowStartLayer} of the circuit's ${c.nodes + e.nodesBelowStartLayer} nodes are below the start layer${startLayer === undefined ? '' : ` ${startLayer}`}: the first score leaves them out${e.allLayers ? ', the second counts them' : ''}`,
    );
  const rows: string[][] = [];
  for (const s of e.series) {
    for (const p of s.points)
      rows.push([
        s.label,
        p.threshold.toPrecision(3),
        String(p.nodes),
        String(p.featureNodes),
        String(p.errorNodes),
        fixed(p.faithfulness),
        fixed(p.completeness),
      ]);
  }
  out.push('');
  out.push(
    ...table(
      ['series', 'threshold', 'nodes', 'features', 'errors', 'faithfulness', 'completeness'],
      rows,
    ),
  );
  for (const s of e.series)
    if (s.skipped.length > 0)
      out.push(
        `${s.label}: skipped ${s.skipped.length} thresholds below the circuit file's node threshold (${s.skipped.map((t) => t.toPrecision(3)).join(', ')}); rerun discovery with a lower --node-threshold to draw them`,
      );
  return out.join('\n');
}

/**
 * Writes evaluation.json, faithfulness.svg and completeness.svg to `out` (a single run and the
 * merge of a sharded one write the same files); returns the JSON object.
 */
export async function writeEvaluationFiles(
  out: string,
  settings: EvaluationSettings,
  e: Evaluation,
  nodeThreshold: number,
): Promise<ReturnType<typeof evaluationJson>> {
  const json = evaluationJson(settings, e, nodeThreshold);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'evaluation.json'), JSON.stringify(json, null, 2) + '\n');
  const subtitle = `${settings.ablation} ablation, layers >= ${settings.startLayer}, ${settings.examples} examples of ${path.basename(settings.data)}`;
  for (const kind of ['faithfulness', 'completeness'] as const)
    fs.writeFileSync(path.join(out, `${kind}.svg`), await renderSvg(curveSpec(e, kind, subtitle)));
  return json;
}
