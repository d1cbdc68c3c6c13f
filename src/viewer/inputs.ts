// What the report shows, gathered from files only (never the model): circuit.json,
// evaluation.json (+ its SVG plots), dashboards.json, shift.json (SHIFT's results and candidate
// features, from `sfc shift`) and feature labels, which are either the
// organism's ground truth (labels.jsonl: {"site","feature","label","precision","recall","f1",
// "frequency"} per line) or annotations as the paper ships them ({"Name":"resid_5/3036",
// "Annotation":"..."} per line).

import fs from 'node:fs';
import path from 'node:path';
import { CIRCUIT_FILE, nodeId, readCircuit, type Circuit } from '../circuit/circuit.ts';
import { DASHBOARDS_FILE, readDashboards, type DashboardEntry } from '../dashboards/file.ts';
import { readShift, SHIFT_FILE, type ShiftView } from '../shift/file.ts';
import { readEvaluationFile } from '../evaluation/file.ts';
import { readLabelLines } from '../organism/labels-file.ts';
import { defaultGraphFiles, readGraphViews, type GraphView } from './graph-input.ts';

export interface FeatureLabelText {
  label: string;
  /** e.g. "F1 0.93 · precision 0.95 · recall 0.91" for ground truth. */
  detail: string;
  source: 'ground truth' | 'annotation';
}

export interface CurvePoint {
  threshold: number;
  nodes: number;
  faithfulness: number | null;
  completeness: number | null;
}

export interface EvaluationView {
  file: string;
  startLayer: number;
  ablation: string;
  metric: { model: number; empty: number } | null;
  circuitScore: { nodes: number; faithfulness: number | null; completeness: number | null } | null;
  /** The circuit as saved scored with every layer spliced (embed included); null in older files. */
  allLayers: { nodes: number; faithfulness: number | null; completeness: number | null } | null;
  /** Circuit nodes below the start layer, which circuitScore leaves out (0 in older files). */
  nodesBelowStart: number;
  series: { name: string; label: string; points: CurvePoint[] }[];
}

export interface ReportData {
  title: string;
  /** Served by `sfc view` (the page then polls for changed files). */
  live: boolean;
  files: {
    circuit: string;
    evaluation: string | null;
    dashboards: string | null;
    shift: string | null;
    labels: string[];
    graphs: string[];
  };
  circuit: Circuit;
  /** By "site/feature", for the circuit's features only. */
  labels: Record<string, FeatureLabelText>;
  dashboards: {
    corpus: string;
    tokens: number;
    logitLens: string;
    vocab: Record<string, string>;
    features: Record<string, DashboardEntry>;
  } | null;
  evaluation: EvaluationView | null;
  /** SHIFT's results and candidate features (shift.json), for the SHIFT panel. */
  shift: ShiftView | null;
  /** Attribution graphs (graph-input.ts): <dir>/graphs/*.json from `sfc graph`, or --graph files. */
  graphs: GraphView[];
  /**
   * evaluate's own plots (faithfulness.svg, completeness.svg), shown when evaluation.json has no
   * usable series: as data:image/svg+xml;base64 URLs for an <img>, never as markup in the page
   * (an SVG inlined into the page could run script; in an <img> it runs none).
   */
  curveImages: { faithfulness?: string; completeness?: string };
  warnings: string[];
}

export interface ReportOptions {
  /** Feature label files (ground-truth labels.jsonl or annotations); default: found beside the SAEs. */
  labels?: string[];
  annotations?: string[];
  /** Default <dir>/dashboards.json when it exists. */
  dashboards?: string;
  /** Default <dir>/evaluation.json when it exists. */
  evaluation?: string;
  /** Default <dir>/shift.json when it exists. */
  shift?: string;
  /** Attribution graph JSON files (Neuronpedia / circuit-tracer format); default <dir>/graphs/*.json. */
  graphs?: string[];
  title?: string;
}

/** evaluate's plots are a few tens of kB; a larger file is not what we expect there. */
const MAX_CURVE_SVG_BYTES = 4 << 20;

const fmt = (v: number) => v.toFixed(2);

/**
 * Reads a label file of either kind (src/organism/labels-file.ts); returns labels by
 * "site/feature". Ground-truth features that never fired (label null) are left out.
 */
export function readFeatureLabels(file: string): Map<string, FeatureLabelText> {
  const out = new Map<string, FeatureLabelText>();
  for (const l of readLabelLines(file)) {
    if (l.kind === 'annotation') {
      out.set(l.name, { label: l.annotation, detail: '', source: 'annotation' });
      continue;
    }
    const g = l.label;
    if (g.label === null) continue;
    out.set(`${g.site}/${g.feature}`, {
      label: g.label,
      detail: `F1 ${fmt(g.f1)} · precision ${fmt(g.precision)} · recall ${fmt(g.recall)} · fires on ${(100 * g.frequency).toPrecision(2)}% of tokens`,
      source: 'ground truth',
    });
  }
  return out;
}

/** evaluation.json's series (read by src/evaluation/file.ts); the caller turns errors into warnings. */
export function readEvaluation(file: string): EvaluationView {
  const j = readEvaluationFile(file);
  const num = (v: number | null) => (v !== null && Number.isFinite(v) ? v : null);
  return {
    file,
    startLayer: j.start_layer,
    ablation: j.ablation,
    metric:
      num(j.metric.model) !== null
        ? { model: num(j.metric.model)!, empty: num(j.metric.empty) ?? 0 }
        : null,
    circuitScore: {
      nodes: j.circuit_score.nodes,
      faithfulness: num(j.circuit_score.faithfulness),
      completeness: num(j.circuit_score.completeness),
    },
    series: j.series.map((s) => ({
      name: s.name,
      label: s.label,
      points: s.points.map((p) => ({
        threshold: p.threshold,
        nodes: p.nodes,
        faithfulness: num(p.faithfulness),
        completeness: num(p.completeness),
      })),
    })),
    allLayers: j.circuit_score_all_layers
      ? {
          nodes: j.circuit_score_all_layers.nodes,
          faithfulness: num(j.circuit_score_all_layers.faithfulness),
          completeness: num(j.circuit_score_all_layers.completeness),
        }
      : null,
    nodesBelowStart: j.circuit_score.nodes_below_start_layer ?? 0,
  };
}

/** Where ground-truth labels usually are: in the folder, or beside the circuit's SAEs/model. */
function defaultLabelFiles(dir: string, circuit: Circuit): string[] {
  const candidates = [path.join(dir, 'labels.jsonl')];
  for (const base of [process.cwd(), dir]) {
    if (circuit.saes) candidates.push(path.resolve(base, circuit.saes, '..', 'labels.jsonl'));
    if (circuit.model) candidates.push(path.resolve(base, circuit.model, 'labels.jsonl'));
  }
  const found = candidates.find((f) => fs.existsSync(f));
  return found ? [found] : [];
}

/** Gathers everything the report shows from `dir` (a folder holding circuit.json). */
export function collectReportData(
  dir: string,
  options: ReportOptions = {},
  live = false,
): ReportData {
  const circuitFile = path.join(dir, CIRCUIT_FILE);
  const circuit = readCircuit(circuitFile);
  const warnings: string[] = [];
  const features = new Set(
    circuit.nodes.filter((n) => n.kind === 'feature').map((n) => nodeId(n.site, n.feature, null)),
  );

  const shiftFile = options.shift ?? path.join(dir, SHIFT_FILE);
  const shift =
    options.shift !== undefined || fs.existsSync(shiftFile) ? readShift(shiftFile) : null;
  if (shift) {
    const missing = shift.features.filter((f) => !features.has(f.id)).length;
    if (missing > 0)
      warnings.push(
        `${shiftFile}: ${missing} of its ${shift.features.length} features are not in ${circuitFile}`,
      );
  }
  // Labels for the circuit's features and SHIFT's candidates (normally the same features).
  const labelled = new Set([...features, ...(shift?.features.map((f) => f.id) ?? [])]);

  const labelFiles = [
    ...(options.labels ?? defaultLabelFiles(dir, circuit)),
    ...(options.annotations ?? []),
  ];
  const labels: Record<string, FeatureLabelText> = {};
  for (const file of labelFiles)
    for (const [key, l] of readFeatureLabels(file)) if (labelled.has(key)) labels[key] = l;

  let dashboards: ReportData['dashboards'] = null;
  const dashFile = options.dashboards ?? path.join(dir, DASHBOARDS_FILE);
  if (options.dashboards !== undefined || fs.existsSync(dashFile)) {
    const all = readDashboards(dashFile);
    const vocab: Record<string, string> = {};
    const kept: Record<string, DashboardEntry> = {};
    for (const [key, f] of Object.entries(all.features)) {
      if (!features.has(key)) continue;
      kept[key] = f;
      for (const c of f.contexts) for (const id of c.ids) vocab[id] = all.vocab[id];
      for (const [id] of [...f.promoted, ...f.suppressed])
        vocab[id] = all.vocab[id] ?? `<id ${id}>`;
    }
    const missing = [...features].filter((k) => !(k in kept)).length;
    if (missing > 0)
      warnings.push(
        `${dashFile}: no dashboard for ${missing} of the circuit's ${features.size} features`,
      );
    dashboards = {
      corpus: all.corpus,
      tokens: all.tokens,
      logitLens: all.logit_lens,
      vocab,
      features: kept,
    };
  } else {
    warnings.push(`no ${DASHBOARDS_FILE} in ${dir}: run \`sfc dashboards\` for feature dashboards`);
  }

  let evaluation: EvaluationView | null = null;
  const evalFile = options.evaluation ?? path.join(dir, 'evaluation.json');
  if (fs.existsSync(evalFile)) {
    try {
      evaluation = readEvaluation(evalFile);
    } catch (e) {
      warnings.push(`${evalFile}: cannot read the curves (${(e as Error).message})`);
    }
  }
  const curveImages: ReportData['curveImages'] = {};
  if (!evaluation || evaluation.series.length === 0)
    for (const kind of ['faithfulness', 'completeness'] as const) {
      const svg = path.join(path.dirname(evalFile), `${kind}.svg`);
      const size = fs.statSync(svg, { throwIfNoEntry: false })?.size;
      if (size === undefined) continue;
      if (size > MAX_CURVE_SVG_BYTES) {
        warnings.push(`${svg}: ${size} bytes, more than ${MAX_CURVE_SVG_BYTES}: not shown`);
        continue;
      }
      curveImages[kind] = `data:image/svg+xml;base64,${fs.readFileSync(svg).toString('base64')}`;
    }

  const graphs = readGraphViews(
    options.graphs ?? defaultGraphFiles(dir),
    warnings,
    options.graphs !== undefined,
  );

  return {
    title:
      options.title ??
      `Circuit: ${path.basename(circuit.data) || 'task'} (${circuit.method}, ${circuit.aggregation})`,
    live,
    files: {
      circuit: circuitFile,
      evaluation: evaluation ? evalFile : null,
      dashboards: dashboards ? dashFile : null,
      shift: shift ? shiftFile : null,
      labels: labelFiles,
      graphs: graphs.map((g) => g.file),
    },
    circuit,
    labels,
    dashboards,
    evaluation,
    shift,
    graphs,
    curveImages,
    warnings,
  };
}

/** The files a report depends on, for change detection by `sfc view`. */
export function inputStamp(dir: string, options: ReportOptions = {}): string {
  const files = [
    path.join(dir, CIRCUIT_FILE),
    options.dashboards ?? path.join(dir, DASHBOARDS_FILE),
    options.evaluation ?? path.join(dir, 'evaluation.json'),
    options.shift ?? path.join(dir, SHIFT_FILE),
    ...(options.labels ?? []),
    ...(options.annotations ?? []),
    ...(options.graphs ?? defaultGraphFiles(dir)),
  ];
  return files
    .map((f) => {
      const s = fs.statSync(f, { throwIfNoEntry: false });
      return s ? `${s.mtimeMs}:${s.size}` : '-';
    })
    .join('|');
}
