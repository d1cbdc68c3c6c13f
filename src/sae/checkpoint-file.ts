// Reading an SAE training checkpoint (written by saveCheckpoint in ./train-checkpoint.ts):
// trainer.json (step, optimiser and data-stream state, the options it was trained with) and
// trainer.safetensors (parameters, Adam moments, lastFired, the stream's buffered vectors). The
// one reader: zod validates the JSON, and every tensor is checked for its expected length before
// the trainer copies it into place.

import path from 'node:path';
import { z } from 'zod';
import { readSafetensors } from '../io/safetensors.ts';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';

export const CHECKPOINT_JSON = 'trainer.json';
export const CHECKPOINT_TENSORS = 'trainer.safetensors';

const count = z.number().int().min(0);
const positive = z.number().int().min(1);

// The activation sources' saveState() (src/sae/activations.ts), whose loadState takes these types.
const windowsSchema = z.looseObject({ epoch: count, doc: count, offset: count });
const bufferSchema = z.looseObject({ refills: count });
const sourceSchema = z.discriminatedUnion('kind', [
  z.looseObject({ kind: z.literal('array'), epoch: count, cursor: count }),
  z.looseObject({ kind: z.literal('model'), windows: windowsSchema, buffer: bufferSchema }),
]);

export type SourceJson = z.infer<typeof sourceSchema>;
export type WindowStreamJson = z.infer<typeof windowsSchema>;
export type BufferJson = z.infer<typeof bufferSchema>;

const checkpointSchema = z.looseObject({
  version: z.literal(1),
  step: count,
  resampled: count,
  scale: z.number().positive(),
  adamT: count,
  // The options that must match to resume (train.ts compares them); the rest pass through.
  options: z.looseObject({
    site: z.string(),
    width: positive,
    kind: z.enum(['relu', 'jumprelu', 'topk']),
    k: positive.optional(),
    batchSize: positive,
    seed: z.number(),
    normalize: z.boolean(),
  }),
  dIn: positive,
  source: sourceSchema,
});

export type CheckpointState = z.infer<typeof checkpointSchema>;

export interface TrainingCheckpoint {
  /** trainer.json, for messages. */
  file: string;
  state: CheckpointState;
  /** Tensor by name, each of the length the state implies (source.* tensors as stored). */
  tensor(name: string): Float32Array;
  /** The data stream's buffered arrays (tensors named source.<name>). */
  sourceArrays: Record<string, Float32Array>;
}

/** Reads and checks the checkpoint in `dir`; errors name the file and what is wrong. */
export function readTrainingCheckpoint(dir: string): TrainingCheckpoint {
  const file = path.join(dir, CHECKPOINT_JSON);
  const parsed = checkpointSchema.safeParse(readJsonFile(file));
  if (!parsed.success)
    throw new Error(
      `${file}: not an SAE training checkpoint (${describeIssues(parsed.error, { limit: 4 })})`,
    );
  const state = parsed.data;
  const tensorFile = path.join(dir, CHECKPOINT_TENSORS);
  const tensors = readSafetensors(tensorFile);
  const F = state.options.width;
  const d = state.dIn;
  const lengths: Record<string, number> = {
    encoder: F * d,
    encoderBias: F,
    decoder: F * d,
    decoderBias: d,
    lastFired: F,
  };
  if (state.options.kind === 'jumprelu') lengths.threshold = F;
  for (const p of ['encoder', 'encoderBias', 'decoder', 'decoderBias', 'threshold'])
    if (lengths[p] !== undefined) lengths[`adam.m.${p}`] = lengths[`adam.v.${p}`] = lengths[p];
  for (const [name, length] of Object.entries(lengths)) {
    const t = tensors.get(name);
    if (!t) throw new Error(`${tensorFile}: no tensor ${name}; incomplete checkpoint`);
    if (t.data.length !== length)
      throw new Error(
        `${tensorFile}: tensor ${name} has ${t.data.length} values, but width ${F} and input width ${d} (${file}) need ${length}`,
      );
  }
  const sourceArrays: Record<string, Float32Array> = {};
  for (const [name, t] of tensors) {
    if (!name.startsWith('source.')) continue;
    if (t.data.length % d !== 0)
      throw new Error(
        `${tensorFile}: tensor ${name} has ${t.data.length} values, not whole vectors of width ${d}`,
      );
    sourceArrays[name.slice('source.'.length)] = t.data;
  }
  return {
    file,
    state,
    tensor: (name) => {
      const t = tensors.get(name);
      if (!t) throw new Error(`${tensorFile}: no tensor ${name}; incomplete checkpoint`);
      return t.data;
    },
    sourceArrays,
  };
}
