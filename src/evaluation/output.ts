// evaluation.json (every point of every series, with the settings that produced them) and the
// table `sfc evaluate` prints.

import type { CircuitScore, Evaluation } from './faithfulness.ts';

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
    metric: { model: e.fModel, empty: e.fEmpty },
    circuit_score: { node_threshold: nodeThreshold, ...scoreJson(e.circuit) },
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
export function formatEvaluation(e: Evaluation, nodeThreshold: number): string {
  const out: string[] = [];
  out.push(`F(M) model ${fixed(e.fModel, 4)}   F(∅) empty circuit ${fixed(e.fEmpty, 4)}`);
  const c = e.circuit;
  out.push(
    `circuit as saved (|effect| > ${nodeThreshold}): ${c.nodes} nodes (${c.featureNodes} features, ${c.errorNodes} errors)  ` +
      `faithfulness ${fixed(c.faithfulness)}  completeness ${fixed(c.completeness)}`,
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
