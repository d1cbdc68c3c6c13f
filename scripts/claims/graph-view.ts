// docs/graphs.md's figures on the report's automatic supernodes: `sfc graph` (as `npm start`
// runs it, on the first held-out across-RC prompt, shipped transcoders and labels) into a
// temporary folder, the file read as the report reads it (src/viewer/graph-input.ts), then the
// page's own grouping (src/viewer/page/supernodes.js, evaluated as the page runs it) with the
// page's defaults (cos ≥ 0.9, layers ± 1), compared with the features' ground-truth labels.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import { firstPrompt } from '../../src/cli/commands/start.ts';
import { readGraphView, type GraphViewNode } from '../../src/viewer/graph-input.ts';
import { EXACT_COUNT } from './lib/organism.ts';
import type { ClaimGroup } from './types.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Supernodes {
  labelKey(clerp: string): string;
  groupBySharedEdges(
    nodes: GraphViewNode[],
    links: [number, number, number][],
    o: { threshold: number; band: number },
  ): { name: string; members: string[] }[];
}

async function measure(): Promise<Record<string, number>> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'claims-graph-view-'));
  try {
    const prompt = firstPrompt(path.join(repo, 'data', 'rc_test.jsonl'));
    const run = spawnSync(
      process.execPath,
      ['bin/sfc.js', 'graph', '--prompt', prompt, '--slug', 'g', '--out', out, '--json'],
      { cwd: repo, encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`sfc graph failed: ${run.stderr}`);
    const g = readGraphView(path.join(out, 'g.json'), (w) => {
      throw new Error(w);
    });
    const app = {} as Supernodes;
    const code = fs.readFileSync(path.join(repo, 'src/viewer/page/supernodes.js'), 'utf8');
    vm.runInNewContext(`'use strict';{${code}}`, { app });
    const groups = app.groupBySharedEdges(g.nodes, g.links, { threshold: 0.9, band: 1 });
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    const labels = groups.map(
      (grp) => new Set(grp.members.map((id) => app.labelKey(byId.get(id)!.clerp))),
    );
    return {
      groups: groups.length,
      grouped: groups.reduce((s, grp) => s + grp.members.length, 0),
      pure: labels.filter((l) => l.size === 1 && !l.has('')).length,
      largest: Math.max(...groups.map((grp) => grp.members.length)),
    };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

const doc = 'docs/graphs.md';
const TEXT = 'the defaults form 5 supernodes of 19 features, and 4 of the 5 are pure';

export const groups: ClaimGroup[] = [
  {
    name: 'graph-view-supernodes',
    script: 'scripts/claims/graph-view.ts',
    fast: true,
    measure,
    claims: [
      { key: 'groups', doc, text: TEXT, stated: 5, tolerance: 0, why: EXACT_COUNT },
      { key: 'grouped', doc, text: TEXT, stated: 19, tolerance: 0, why: EXACT_COUNT },
      { key: 'pure', doc, text: TEXT, stated: 4, tolerance: 0, why: EXACT_COUNT },
      {
        key: 'largest',
        doc,
        text: 'the largest, 7 `subject_sg` features at layer 2',
        stated: 7,
        tolerance: 0,
        why: EXACT_COUNT,
      },
    ],
  },
];
