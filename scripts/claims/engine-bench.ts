// The engine's speed as README.md and docs/engine.md state it: ratios measured in one run of
// `npm run bench -- engine` (against the machine's own sgemm ceiling, and against PyTorch doing
// the same work), never absolute times.

import { runEngineBench } from '../../bench/engine.ts';
import type { ClaimGroup } from './types.ts';

// On the shared 2-core machine one run moved the PyTorch ratio between 2.0 (best of 9) and 3.1
// (median), and the engine's share of the ceiling between 27% and 65%: timing on a busy host.
// Best-of-9 ratios are the stable ones; they are stated with that noise as tolerance.
const NOISE = 'a timing ratio on a shared machine (best of 9 runs; one run spread 2.0–3.1)';

async function measure(): Promise<Record<string, number>> {
  const r = await runEngineBench();
  const out: Record<string, number> = {
    'engine.fwdbwd.ceiling_share.best':
      (r.gflop.forwardBackward / r.forwardBackward.best / r.ceiling) * 100,
  };
  if (!('skipped' in r.torch))
    out['torch_over_engine.fwdbwd.best'] = r.torch.forward_backward.best / r.forwardBackward.best;
  return out;
}

const README_TEXT = 'takes 2.04x as long (best of 9';

export const groups: ClaimGroup[] = [
  {
    name: 'engine-bench',
    script: 'npm run bench -- engine (bench/engine.ts, bench/pytorch_baseline.py)',
    fast: false,
    measure,
    claims: [
      {
        key: 'torch_over_engine.fwdbwd.best',
        doc: 'README.md',
        text: README_TEXT,
        stated: 2.04,
        tolerance: 0.5,
        relative: true,
        why: NOISE,
      },
      {
        key: 'torch_over_engine.fwdbwd.best',
        doc: 'docs/engine.md',
        text: 'PyTorch / engine, forward+backward 2.56x median, 2.04x best',
        stated: 2.04,
        tolerance: 0.5,
        relative: true,
        why: NOISE,
      },
      {
        key: 'engine.fwdbwd.ceiling_share.best',
        doc: 'README.md',
        text: 'difference to every site at 65% of the native sgemm ceiling',
        stated: 65,
        tolerance: 0.35,
        relative: true,
        why: NOISE,
      },
    ],
  },
];
