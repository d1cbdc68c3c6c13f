// The engine's speed as README.md and docs/engine.md state it: ratios measured in one run of
// `npm run bench -- engine` (against the machine's own sgemm ceiling, and against PyTorch doing
// the same work), never absolute times.

import { runEngineBench } from '../../bench/engine.ts';
import type { ClaimGroup } from './types.ts';

// Timing on a shared host is noisy, and the load changes between the engine's half of a run and
// PyTorch's: over three runs on 2026-12-02 the PyTorch ratio (best of 9) was 1.9-4.1x and the
// engine's share of the ceiling 46-65%. So the docs state lower bounds, and a claim is 1 when
// the run meets its bound.
const BOUND = 'a lower bound on a timing ratio (shared host: single runs spread widely above it)';

async function measure(): Promise<Record<string, number>> {
  const r = await runEngineBench();
  const share = (r.gflop.forwardBackward / r.forwardBackward.best / r.ceiling) * 100;
  const out: Record<string, number> = {
    'engine.fwdbwd.ceiling_share.best.at_least_40': share >= 40 ? 1 : 0,
  };
  if (!('skipped' in r.torch)) {
    const ratio = r.torch.forward_backward.best / r.forwardBackward.best;
    out['torch_over_engine.fwdbwd.best.at_least_1.5'] = ratio >= 1.5 ? 1 : 0;
  }
  return out;
}

const bound = (key: string, doc: string, text: string) => ({
  key,
  doc,
  text,
  stated: 1,
  tolerance: 0,
  why: BOUND,
});

export const groups: ClaimGroup[] = [
  {
    name: 'engine-bench',
    script: 'npm run bench -- engine (bench/engine.ts, bench/pytorch_baseline.py)',
    fast: false,
    measure,
    claims: [
      bound(
        'torch_over_engine.fwdbwd.best.at_least_1.5',
        'README.md',
        'takes at least 1.5x as long',
      ),
      bound(
        'torch_over_engine.fwdbwd.best.at_least_1.5',
        'docs/engine.md',
        'the engine does the same work at least 1.5x faster than PyTorch 1.13',
      ),
      bound(
        'engine.fwdbwd.ceiling_share.best.at_least_40',
        'README.md',
        'no less than 40% of the native sgemm ceiling',
      ),
    ],
  },
];
