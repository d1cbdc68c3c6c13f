// One call that trains a whole transcoder set from the MLP pairs of every layer: per-layer
// transcoders (layer L seeded with seed + L) or one cross-layer transcoder. `sfc transcoder train`
// and the organism's transcoders / clt stages both go through it, so the stage trains exactly what
// the command does with the same settings.

import type { OnProgress } from '../progress.ts';
import type { Transcoder } from './transcoder.ts';
import type { CrossLayerTranscoder } from './clt.ts';
import { trainTranscoder } from './train.ts';
import { trainClt } from './train-clt.ts';

export interface TranscoderSetSettings {
  /** One cross-layer transcoder instead of one transcoder per layer. */
  clt: boolean;
  /** Features per layer. */
  width: number;
  /** TopK with k features per token; absent with l1. */
  k?: number;
  /** ReLU with this L1 coefficient instead of TopK. */
  l1?: number;
  /** A linear skip W_skip·x (per-layer transcoders only). */
  skip?: boolean;
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
}

// Steps between progress reports; log lines every LOG_EVERY steps (the callbacks change no numbers).
const PROGRESS_EVERY = 10;
const LOG_EVERY = { transcoder: 500, clt: 250 };

/**
 * Trains the set on pairs[L] = the (x, y) pairs of layer L; log receives a line of batch FVE and
 * L0 now and then, onProgress the steps done of all layers' steps.
 */
export function trainTranscoderSet(
  pairs: { x: Float32Array; y: Float32Array; n: number }[],
  d: number,
  s: TranscoderSetSettings,
  log?: (line: string) => void,
  onProgress?: OnProgress,
): Transcoder[] | CrossLayerTranscoder {
  if (s.l1 !== undefined && s.k !== undefined)
    throw new Error('transcoder training: TopK k or an L1 coefficient, not both');
  if (s.clt && s.skip) throw new Error('transcoder training: cross-layer transcoders have no skip');
  const activation = s.l1 === undefined ? 'topk' : 'relu';
  const common = {
    width: s.width,
    activation,
    k: s.l1 === undefined ? (s.k ?? 8) : undefined,
    l1: s.l1,
    steps: s.steps,
    batchSize: s.batchSize,
    lr: s.lr,
  } as const;
  const last = s.steps - 1;
  if (s.clt)
    return trainClt(pairs, d, {
      ...common,
      seed: s.seed,
      logEvery: PROGRESS_EVERY,
      onLog: (step, fve, l0) => {
        onProgress?.(step + 1, s.steps);
        if (step % LOG_EVERY.clt === 0 || step === last)
          log?.(
            `CLT step ${step}: batch FVE ${fve.map((f) => f.toFixed(4)).join(' ')}, L0 ${l0.map((v) => v.toFixed(1)).join(' ')}`,
          );
      },
    });
  return pairs.map((p, L) =>
    trainTranscoder(L, p.x, p.y, p.n, d, {
      ...common,
      skip: !!s.skip,
      seed: s.seed + L,
      logEvery: PROGRESS_EVERY,
      onLog: (step, fve, l0) => {
        onProgress?.(L * s.steps + step + 1, pairs.length * s.steps, { layer: L });
        if (step % LOG_EVERY.transcoder === 0 || step === last)
          log?.(`layer ${L} step ${step}: batch FVE ${fve.toFixed(4)}, L0 ${l0.toFixed(1)}`);
      },
    }),
  );
}
