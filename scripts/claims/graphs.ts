// Attribution graphs on the organism's agreement tasks with the shipped per-layer transcoders and
// the shipped CLT (scripts/graph-tasks.ts): docs/graphs.md's comparison table.

import { graphTaskRows } from './lib/graph-tasks.ts';
import type { Claim, ClaimGroup } from './types.ts';

const DOC = 'docs/graphs.md';
const SETS = { 'per-layer': 'models/organism/transcoders', CLT: 'models/organism/clt' } as const;

// The table rows exactly as docs/graphs.md states them (task, transcoders, replacement score,
// completeness, active features, nodes kept, deciding noun first).
const ROWS = [
  '| simple    | per-layer   | 0.598             | 0.856        | 32              | 27.1       | 40 / 40             |',
  '| simple    | CLT         | 0.614             | 0.854        | 32              | 26.2       | 40 / 40             |',
  '| nounpp    | per-layer   | 0.799             | 0.916        | 126             | 37.1       | 38 / 40             |',
  '| nounpp    | CLT         | 0.793             | 0.911        | 128             | 36.9       | 40 / 40             |',
  '| rc        | per-layer   | 0.799             | 0.917        | 159             | 39.6       | 40 / 40             |',
  '| rc        | CLT         | 0.801             | 0.912        | 159             | 36.2       | 40 / 40             |',
  '| within_rc | per-layer   | 0.933             | 0.970        | 127             | 31.9       | 34 / 40             |',
  '| within_rc | CLT         | 0.924             | 0.967        | 128             | 33.8       | 31 / 40             |',
];

function parseRow(row: string) {
  const cells = row.split('|').map((c) => c.trim());
  return {
    task: cells[1],
    set: cells[2],
    replacement: Number(cells[3]),
    completeness: Number(cells[4]),
    first: Number(cells[7].split('/')[0]),
  };
}

async function measure(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [set, dir] of Object.entries(SETS))
    for (const row of graphTaskRows(dir, 40).rows) {
      out[`${row.task}.${set}.replacement`] = row.replacement;
      out[`${row.task}.${set}.completeness`] = row.completeness;
      out[`${row.task}.${set}.first`] = row.decidingFirst;
    }
  return out;
}

const why = 'deterministic (shipped weights, fixed prompts); the doc rounds to 3 decimals';
const claims: Claim[] = ROWS.flatMap((text) => {
  const r = parseRow(text);
  const key = `${r.task}.${r.set}`;
  return [
    { key: `${key}.replacement`, doc: DOC, text, stated: r.replacement, tolerance: 0.0005, why },
    { key: `${key}.completeness`, doc: DOC, text, stated: r.completeness, tolerance: 0.0005, why },
    {
      key: `${key}.first`,
      doc: DOC,
      text,
      stated: r.first,
      tolerance: 0,
      why: 'a count of fixed prompts',
    },
  ];
});

export const groups: ClaimGroup[] = [
  {
    name: 'graphs-tasks',
    script: 'scripts/graph-tasks.ts',
    fast: false,
    measure,
    claims,
  },
];
