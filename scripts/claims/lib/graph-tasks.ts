// The attribution graph on the organism's agreement tasks with one transcoder folder: per task,
// over the first `count` prompts of its held-out file, the mean replacement and completeness
// scores, active features, nodes kept (0.8 / 0.98), how often the noun the verb agrees with
// (position 1, or the last token for within_rc) is the most influential non-logit node, and
// seconds per graph. Used by scripts/graph-tasks.ts and the `graphs-tasks` claims.

import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../../src/model/load.ts';
import { GptNeoX } from '../../../src/model/gptneox.ts';
import { loadTranscoders } from '../../../src/transcoders/load.ts';
import { buildReplacement } from '../../../src/graphs/replacement.ts';
import { buildGraph } from '../../../src/graphs/graph.ts';
import { graphScores, pruneGraph } from '../../../src/graphs/prune.ts';

export const GRAPH_TASKS = ['simple', 'nounpp', 'rc', 'within_rc'] as const;

export interface GraphTaskRow {
  task: (typeof GRAPH_TASKS)[number];
  prompts: number;
  replacement: number;
  completeness: number;
  features: number;
  kept: number;
  decidingFirst: number;
  seconds: number;
}

export function graphTaskRows(dir: string, count = 40, modelDir = 'models/organism') {
  const loaded = loadModel(modelDir, { tokenizer: true });
  const tokenizer = loaded.tokenizer!;
  const model = new GptNeoX(loaded.config, loaded.weights);
  const { kind, transcoders } = loadTranscoders(dir);
  const rows: GraphTaskRow[] = GRAPH_TASKS.map((task) => {
    const prompts = fs
      .readFileSync(path.join('data', `${task}_test.jsonl`), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .slice(0, count)
      .map((l) => (JSON.parse(l) as { clean_prefix: string }).clean_prefix);
    const sum = { replacement: 0, completeness: 0, features: 0, kept: 0, first: 0, seconds: 0 };
    for (const prompt of prompts) {
      const ids = tokenizer.encode(prompt);
      const decider = task === 'within_rc' ? ids.length - 1 : 1;
      const t0 = performance.now();
      const g = buildGraph(buildReplacement(model, transcoders, ids));
      const pruned = pruneGraph(g, 0.8, 0.98);
      const scores = graphScores(g);
      sum.seconds += (performance.now() - t0) / 1000;
      sum.replacement += scores.replacement;
      sum.completeness += scores.completeness;
      sum.features += g.nodes.filter((n) => n.kind === 'feature').length;
      sum.kept += pruned.nodeMask.reduce((a, b) => a + b, 0);
      let best = -1;
      g.nodes.forEach((n, i) => {
        if (n.kind === 'logit') return;
        if (best < 0 || pruned.nodeInfluence[i] > pruned.nodeInfluence[best]) best = i;
      });
      const top = g.nodes[best];
      if (top.kind === 'token' && top.position === decider) sum.first++;
    }
    const n = prompts.length;
    return {
      task,
      prompts: n,
      replacement: sum.replacement / n,
      completeness: sum.completeness / n,
      features: sum.features / n,
      kept: sum.kept / n,
      decidingFirst: sum.first,
      seconds: sum.seconds / n,
    };
  });
  return { kind, rows };
}
