// docs/viewer.md's walk-through on the organism, in process: discover on 40 examples of the
// across-RC task (with edges), evaluate on 40 held-out ones, dashboards on `--corpus organism`
// (2000 fresh texts, seed 505) and the report, in a temporary folder; counts and the page's size.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readCircuit } from '../../src/circuit/circuit.ts';
import { runDashboards } from '../../src/dashboards/run.ts';
import { organismDocuments } from '../../src/organism/corpus.ts';
import { buildReport } from '../../src/viewer/report.ts';
import { evaluateTask } from './lib/evaluate.ts';
import { EXACT_COUNT, SEEDED } from './lib/organism.ts';
import type { ClaimGroup } from './types.ts';

async function measure(): Promise<Record<string, number>> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'claims-viewer-'));
  const log = (line: string) => process.stderr.write(`claims: viewer: ${line}\n`);
  try {
    await evaluateTask({
      task: 'rc',
      discoverExamples: 40,
      evaluateExamples: 40,
      nodeThreshold: 0.1,
      nodesOnly: false,
      out,
      log,
    });
    const circuit = readCircuit(out);
    log('dashboards');
    // As `sfc dashboards --corpus organism` does: the CLI generates the texts, dashboards reads them.
    const dashboards = runDashboards({
      corpus: 'organism',
      documents: organismDocuments('organism'),
      out,
    });
    log('report');
    const report = buildReport(out);
    return {
      nodes: circuit.nodes.length,
      edges: circuit.edges.length,
      dashboard_features: dashboards.features,
      dashboard_tokens: dashboards.tokens,
      report_mb: fs.statSync(report).size / 1e6,
    };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

const doc = 'docs/viewer.md';
const DISCOVER = '# 189 nodes, 987 edges';
const DASHBOARDS = '# 183 features, 49,681 tokens';
const REPORT = '# out/report.html, ~0.9 MB';

export const groups: ClaimGroup[] = [
  {
    name: 'viewer',
    script:
      'sfc discover --data data/rc_train.jsonl --examples 40; sfc evaluate --examples 40; sfc dashboards --corpus organism; sfc report',
    fast: false,
    measure,
    claims: [
      { key: 'nodes', doc, text: DISCOVER, stated: 189, tolerance: 0, why: EXACT_COUNT },
      { key: 'edges', doc, text: DISCOVER, stated: 987, tolerance: 0, why: EXACT_COUNT },
      {
        key: 'dashboard_features',
        doc,
        text: DASHBOARDS,
        stated: 183,
        tolerance: 0,
        why: EXACT_COUNT,
      },
      {
        key: 'dashboard_tokens',
        doc,
        text: DASHBOARDS,
        stated: 49681,
        tolerance: 0,
        why: EXACT_COUNT,
      },
      { key: 'report_mb', doc, text: REPORT, stated: 0.9, tolerance: 0.05, why: SEEDED('0.1 MB') },
    ],
  },
];
