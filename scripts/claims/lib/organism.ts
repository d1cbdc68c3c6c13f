// What the claim groups share: the shipped organism loaded once per run, folder sizes, and the
// wording every seeded claim uses to justify its tolerance.

import fs from 'node:fs';
import path from 'node:path';
import { defaultModelDir, loadModel } from '../../../src/model/load.ts';
import { GptNeoX } from '../../../src/model/gptneox.ts';
import { openSaes, type SaeLibrary } from '../../../src/sae/library.ts';
import type { Tokenizer } from '../../../src/model/tokenizer.ts';
import { loadTask, type TaskExample } from '../../../src/data/tasks.ts';

export const ORGANISM_DIR = defaultModelDir();

export interface Organism {
  model: GptNeoX;
  tokenizer: Tokenizer;
  library: SaeLibrary;
}

let cached: Organism | null = null;

/** The shipped organism with its SAEs (loaded once; the library loads each SAE on first use). */
export function organism(): Organism {
  if (!cached) {
    const { config, weights, tokenizer } = loadModel(ORGANISM_DIR, { tokenizer: true });
    if (!tokenizer) throw new Error(`${ORGANISM_DIR}: no tokenizer.json`);
    cached = {
      model: new GptNeoX(config, weights),
      tokenizer,
      library: openSaes(path.join(ORGANISM_DIR, 'saes'), config.numLayers, {
        modelWidth: config.hiddenSize,
      }),
    };
  }
  return cached;
}

/** The first `limit` usable examples of a task file, as `sfc discover` / `eval-task` load them. */
export function taskExamples(file: string, limit?: number): TaskExample[] {
  const { model, tokenizer } = organism();
  return loadTask(file, tokenizer, { limit, maxLength: model.config.maxPositionEmbeddings })
    .examples;
}

/** Bytes of every file under dir (what TRAINING.md's "Total size" counts). */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(p) : fs.statSync(p).size;
  }
  return total;
}

/** Tolerance reasons, one wording for the whole catalogue. */
export const SEEDED = (rounding: string) =>
  `seeded and deterministic (measured twice, identical); the doc rounds to ${rounding}`;
export const EXACT_COUNT = 'a count from a seeded, deterministic run (measured twice, identical)';
