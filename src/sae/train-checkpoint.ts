// SAE training checkpoints: the trainer's whole state at a step (dictionary in normalised units,
// Adam moments, when each feature last fired, the data stream's position), so that an interrupted
// run continues bit for bit. Two files in the checkpoint folder: trainer.json and
// trainer.safetensors.

import fs from 'node:fs';
import path from 'node:path';
import { writeSafetensors } from '../io/safetensors.ts';
import type { AdamW } from '../model/adamw.ts';
import type { ActivationSource, SourceState } from './activations.ts';
import { CHECKPOINT_JSON, CHECKPOINT_TENSORS, readTrainingCheckpoint } from './checkpoint-file.ts';
import { SparseAutoencoder } from './dictionary.ts';
import { trainedParams } from './train-loss.ts';

/** The settings a checkpoint must share with the run that continues it (and the SAE's shape). */
export interface CheckpointOptions {
  site: string;
  width: number;
  kind: 'relu' | 'jumprelu' | 'topk';
  k: number | undefined;
  batchSize: number;
  seed: number;
  normalize: boolean;
}

/** What a checkpoint saves and restores of a trainer. */
export interface TrainerState {
  /** In normalised units. */
  readonly sae: SparseAutoencoder;
  /** Optimises trainedParams(sae.kind) of `sae`, in that order. */
  readonly opt: AdamW;
  /** Last step at which each feature fired (-1: at init). */
  readonly lastFired: Float64Array;
  readonly scale: number;
  /** The run's resolved options, saved whole. */
  readonly o: CheckpointOptions;
  readonly source: ActivationSource;
  step: number;
  resampled: number;
}

export function checkpointExists(dir: string | undefined): dir is string {
  return !!dir && fs.existsSync(path.join(dir, CHECKPOINT_JSON));
}

export function saveCheckpoint(dir: string, t: TrainerState): void {
  fs.mkdirSync(dir, { recursive: true });
  const { sae } = t;
  const { m, v } = t.opt;
  const source: SourceState = t.source.saveState();
  const tensors = trainedParams(sae.kind).flatMap((p, i) => [
    { name: p, shape: [sae[p]!.length], data: sae[p]! },
    { name: `adam.m.${p}`, shape: [m[i].length], data: m[i] },
    { name: `adam.v.${p}`, shape: [v[i].length], data: v[i] },
  ]);
  // Steps fit f32 exactly up to 2^24; lastFired is stored relative to nothing else.
  tensors.push({
    name: 'lastFired',
    shape: [sae.width],
    data: Float32Array.from(t.lastFired),
  });
  for (const [name, data] of Object.entries(source.arrays ?? {}))
    tensors.push({ name: `source.${name}`, shape: [data.length], data });
  writeSafetensors(path.join(dir, CHECKPOINT_TENSORS), tensors, { step: String(t.step) });
  const state = {
    version: 1,
    step: t.step,
    resampled: t.resampled,
    scale: t.scale,
    adamT: t.opt.t,
    options: t.o,
    dIn: sae.dIn,
    source: source.json,
  };
  const tmp = path.join(dir, `${CHECKPOINT_JSON}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, path.join(dir, CHECKPOINT_JSON));
}

/**
 * Restores a trainer from the checkpoint in `dir`: `make` builds it around the saved dictionary
 * and scale; its optimizer state, step and data stream (`source`) are then set from the files.
 * Refuses a checkpoint trained with other settings than `o`.
 */
export function loadCheckpoint<T extends TrainerState>(
  dir: string,
  o: CheckpointOptions,
  source: ActivationSource,
  make: (sae: SparseAutoencoder, scale: number) => T,
): T {
  const checkpoint = readTrainingCheckpoint(dir);
  const { file: jsonFile, state } = checkpoint;
  const was = state.options;
  for (const key of ['width', 'kind', 'k', 'batchSize', 'seed', 'normalize', 'site'] as const)
    if (was[key] !== o[key])
      throw new Error(
        `${jsonFile}: the checkpoint was trained with ${key} ${JSON.stringify(was[key])}, not ${JSON.stringify(o[key])}; use the same settings or another checkpoint folder`,
      );
  if (state.dIn !== source.dIn)
    throw new Error(
      `${jsonFile}: the checkpoint has input width ${state.dIn}, the data ${source.dIn}`,
    );
  const get = checkpoint.tensor;
  const sae = new SparseAutoencoder({
    site: o.site,
    kind: o.kind,
    dIn: state.dIn,
    width: o.width,
    encoder: get('encoder'),
    encoderBias: get('encoderBias'),
    decoder: get('decoder'),
    decoderBias: get('decoderBias'),
    threshold: o.kind === 'jumprelu' ? get('threshold') : undefined,
    k: o.k,
  });
  const t = make(sae, state.scale);
  const { m, v } = t.opt;
  trainedParams(o.kind).forEach((p, i) => {
    m[i].set(get(`adam.m.${p}`));
    v[i].set(get(`adam.v.${p}`));
  });
  t.opt.t = state.adamT;
  t.lastFired.set(get('lastFired'));
  t.step = state.step;
  t.resampled = state.resampled;
  try {
    source.loadState({ json: state.source, arrays: checkpoint.sourceArrays });
  } catch (e) {
    throw new Error(`${jsonFile}: ${(e as Error).message}`, { cause: e });
  }
  return t;
}
