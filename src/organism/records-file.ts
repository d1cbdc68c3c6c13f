// Reading the records the organism's stages leave in <out>/training/: model.json (written by
// runModelStage in ./train-model.ts), saes.json (runSaeStage in ./train-saes.ts), labels.json
// (runLabelStage in ./feature-labels.ts) and transcoders.json / clt.json (./train-transcoders.ts).
// One zod-validated reader per record, used by report.ts and by the SAE stage when it merges a
// retrain into the record. Objects are loose: fields added
// by later versions of a writer pass through. Only the file format lives here (no engine).

import { z } from 'zod';
import { readJsonFile } from '../io/text-file.ts';
import { describeIssues } from '../io/validation.ts';

const count = z.number().int().min(0);
const positive = z.number().int().min(1);
// Measured values: a NaN (a 0/0 metric, a diverged loss) is written as null by JSON.stringify.
const measured = z.number().nullable();

// GptNeoXConfig (src/model/config.ts) as the stage records it, in its own camelCase names.
const configSchema = z.looseObject({
  vocabSize: positive,
  hiddenSize: positive,
  numLayers: positive,
  numHeads: positive,
  intermediateSize: positive,
  rotaryPct: z.number().min(0).max(1),
  rotaryEmbBase: z.number().positive(),
  maxPositionEmbeddings: positive,
  layerNormEps: z.number().positive(),
  useParallelResidual: z.boolean(),
  attentionBias: z.boolean(),
});

const modelRecordSchema = z.looseObject({
  // Records written before the schedule was recorded lack it; report.ts assumes the defaults.
  schedule: z
    .looseObject({
      lr: z.number(),
      warmupSteps: count,
      finalLrFraction: z.number(),
      betas: z.array(z.number()),
      weightDecay: z.number(),
      clipNorm: z.number(),
      evalEvery: positive,
      minSteps: count,
      target: z.number(),
    })
    .optional(),
  config: configSchema,
  parameters: count,
  seed: z.number(),
  batchSize: positive,
  ctx: positive,
  maxSteps: count,
  steps: count,
  tokensSeen: count,
  seconds: z.number(),
  reachedTarget: z.boolean(),
  /** [step, mean training loss]. */
  losses: z.array(z.tuple([count, measured])),
  evals: z.array(z.looseObject({ step: count, accuracy: z.record(z.string(), measured) })),
  test: z.record(z.string(), z.looseObject({ accuracy: measured, logitDiff: measured, n: count })),
  // Partial<GrammarMix>: weights, and sentencesPerText's list of them.
  mix: z.record(z.string(), z.union([z.number(), z.array(z.number())])),
});

const saeRecordSchema = z.looseObject({
  width: positive,
  l1: z.number(),
  steps: count,
  batchSize: positive,
  lr: z.number(),
  tokens: count,
  collectSeconds: z.number(),
  sites: z.array(
    z.looseObject({
      site: z.string().min(1),
      // SiteSaeConfig, present for the sites trained differently from the defaults.
      config: z
        .looseObject({
          kind: z.enum(['relu', 'topk']).optional(),
          k: positive.optional(),
          l1: z.number().optional(),
          steps: count.optional(),
          lr: z.number().optional(),
        })
        .optional(),
      seconds: z.number(),
      train: z.looseObject({
        loss: measured,
        mse: measured,
        l0: measured,
        fve: measured,
        deadFraction: measured,
      }),
      /** [step, fve, l0]. */
      curve: z.array(z.tuple([count, measured, measured])),
    }),
  ),
  evaluation: z.array(
    z.looseObject({
      site: z.string().min(1),
      tokens: count,
      l0: measured,
      fve: measured,
      mse: measured,
      deadFraction: measured,
      lossClean: measured,
      lossSae: measured,
      lossZero: measured,
      lossRecovered: measured,
    }),
  ),
  evalSeconds: z.number(),
});

const labelRecordSchema = z.looseObject({
  tokens: count,
  seconds: z.number(),
  // Absent from early records; report.ts then names CONFIDENT_F1.
  minF1: z.number().optional(),
  summary: z.array(
    z.looseObject({
      site: z.string().min(1),
      features: count,
      alive: count,
      confident: count,
      /** [label, confident features], most common first. */
      labels: z.array(z.tuple([z.string(), count])),
    }),
  ),
});

// transcoders.json and clt.json (runTranscoderStage in ./train-transcoders.ts).
const transcoderRecordSchema = z.looseObject({
  command: z.string(),
  /** Collecting the pairs and training; null when remeasured with no earlier record. */
  seconds: measured,
  settings: z.looseObject({
    clt: z.boolean(),
    width: positive,
    k: positive.optional(),
    l1: z.number().optional(),
    steps: count,
    batchSize: positive,
    lr: z.number(),
    seed: z.number(),
    heldOut: positive,
    labelTokens: positive,
  }),
  stats: z.looseObject({
    layers: z.array(z.looseObject({ layer: count, fve: measured, l0: measured, dead: measured })),
    lossClean: measured,
    lossReplaced: measured,
    lossZeroMlps: measured,
    tokens: count,
  }),
  labels: z.looseObject({
    tokens: count,
    minF1: z.number(),
    features: count,
    alive: count,
    confident: count,
    /** [label, confident features], most common first. */
    top: z.array(z.tuple([z.string(), count])),
  }),
});

// Only the training time, which remeasuring keeps from a record of any earlier shape.
const recordSecondsSchema = z.looseObject({ seconds: measured });

export type ModelRecordFile = z.infer<typeof modelRecordSchema>;
export type SaeRecordFile = z.infer<typeof saeRecordSchema>;
export type LabelRecordFile = z.infer<typeof labelRecordSchema>;
export type TranscoderRecordFile = z.infer<typeof transcoderRecordSchema>;

function reader<T>(schema: z.ZodType<T>, what: string): (file: string) => T {
  return (file) => {
    const parsed = schema.safeParse(readJsonFile(file));
    if (!parsed.success)
      throw new Error(`${file}: not ${what} (${describeIssues(parsed.error, { limit: 5 })})`);
    return parsed.data;
  };
}

/** Reads and validates a model stage record (training/model.json). */
export const readModelRecord = reader(modelRecordSchema, 'a model training record');

/** Reads and validates an SAE stage record (training/saes.json). */
export const readSaeRecord = reader(saeRecordSchema, 'an SAE training record');

/** Reads and validates a labels stage record (training/labels.json). */
export const readLabelRecord = reader(labelRecordSchema, 'a feature-label record');

/** Reads and validates a transcoders or clt stage record (training/transcoders.json, clt.json). */
export const readTranscoderRecord = reader(transcoderRecordSchema, 'a transcoder training record');

/** The training time a stage record holds (null when it holds none). */
export const readRecordSeconds = (file: string): number | null =>
  reader(recordSecondsSchema, 'a training record')(file).seconds;
