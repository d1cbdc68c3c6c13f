// What `sfc shift` writes: shift.json (the judged candidates and the table), a text table like the
// paper's, and a bar chart of the table; and the features file a person writes to judge.

import { z } from 'zod';
import type * as vegaLite from 'vega-lite';
import { parseNodeId } from '../circuit/circuit.ts';
import { readJsonFile } from '../io/text-file.ts';
import type { FeatureRef } from './ablation.ts';
import type { ShiftFile } from './file.ts';
import type { ShiftResult } from './shift.ts';

export const SHIFT_PLOT = 'shift.svg';

export interface ShiftFileInfo {
  task: string;
  model: string;
  saes: string;
  judge: string;
  command: string;
  labels: [string, string];
  genders: [string, string];
  /** Per candidate id: a short reason shown beside it (e.g. "female 81%"). */
  notes?: Map<string, string>;
}

/** The content of shift.json. */
export function shiftJson(result: ShiftResult, info: ShiftFileInfo): ShiftFile {
  const spurious = new Set(result.spurious.map((f) => f.id));
  const candidates = new Set(result.features.map((f) => f.id));
  return {
    version: 1,
    task: info.task,
    model: info.model,
    saes: info.saes,
    site: result.site,
    scored_on: result.scoredOn,
    labels: info.labels,
    genders: info.genders,
    judge: info.judge,
    features: result.features.map((f) => ({
      ...f,
      spurious: spurious.has(f.id),
      note: info.notes?.get(f.id) ?? null,
    })),
    extra_features: result.spurious.filter((f) => !candidates.has(f.id)).map((f) => f.id),
    rows: result.rows.map((r) => ({
      name: r.name,
      description: r.description,
      ablated: r.ablated,
      retrained: r.retrained,
      label: r.label,
      gender: r.gender,
      worst_group: r.worstGroup,
    })),
    command: info.command,
    seconds: result.seconds,
  };
}

const splitName = (split: ShiftResult['scoredOn']) =>
  split === 'balanced_val' ? 'balanced validation' : 'balanced test';

const pct = (v: number) => `${(100 * v).toFixed(1)}`.padStart(6);

/** The table as text, one row per line. */
export function formatShiftTable(result: ShiftResult): string {
  const width = Math.max(...result.rows.map((r) => r.name.length), 10);
  const lines = [
    `${`(${splitName(result.scoredOn)} split)`.padEnd(width)}  ablated   label  gender  worst group`,
    ...result.rows.map(
      (r) =>
        `${r.name.padEnd(width)}  ${String(r.ablated).padStart(7)}  ${pct(r.label)}  ${pct(r.gender)}  ${pct(r.worstGroup).padStart(11)}`,
    ),
  ];
  return lines.join('\n');
}

/** Horizontal bars: one panel per score, one bar per row of the table. */
export function shiftPlotSpec(result: ShiftResult, subtitle = ''): vegaLite.TopLevelSpec {
  const scores = [
    ['label', 'label accuracy'],
    ['gender', 'gender accuracy (50 = chance)'],
    ['worstGroup', 'worst-group accuracy'],
  ] as const;
  const values = result.rows.flatMap((r) =>
    scores.map(([key, name]) => ({ row: r.name, score: name, accuracy: 100 * r[key] })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `SHIFT on the ${splitName(result.scoredOn)} split`, subtitle },
    data: { values },
    facet: {
      column: { field: 'score', type: 'nominal', title: null, sort: scores.map((s) => s[1]) },
    },
    spec: {
      width: 180,
      height: { step: 16 },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            y: { field: 'row', type: 'nominal', sort: null, title: null },
            x: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 100] }, title: '%' },
            color: { field: 'row', type: 'nominal', legend: null },
            tooltip: [
              { field: 'row', type: 'nominal' },
              { field: 'accuracy', type: 'quantitative', format: '.1f' },
            ],
          },
        },
        {
          mark: { type: 'rule', strokeDash: [4, 4], color: '#555' },
          encoding: { x: { datum: 50 } },
        },
      ],
    },
  };
}

const featureListSchema = z.union([
  z.array(z.string()),
  z.object({ features: z.array(z.string()) }).passthrough(),
]);

/**
 * The features a person judged spurious: a JSON array of node ids ("resid_1/17") or
 * {"features": [...]}, as the report's SHIFT panel saves it.
 */
export function readFeatureList(file: string): FeatureRef[] {
  const parsed = featureListSchema.safeParse(readJsonFile(file));
  if (!parsed.success)
    throw new Error(
      `${file}: expected a JSON array of feature ids or {"features": [...]}, e.g. ["resid_1/17", "embed/3"]`,
    );
  const ids = Array.isArray(parsed.data) ? parsed.data : parsed.data.features;
  const seen = new Set<string>();
  const out: FeatureRef[] = [];
  for (const id of ids) {
    let node;
    try {
      node = parseNodeId(id);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
    }
    if (node.feature === null)
      throw new Error(
        `${file}: "${id}" is an error node; SHIFT ablates features only (errors are kept)`,
      );
    if (node.position !== null)
      throw new Error(
        `${file}: "${id}" names a position; SHIFT ablates a feature at every position, so write ${node.site}/${node.feature}`,
      );
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ site: node.site, feature: node.feature });
  }
  return out;
}
