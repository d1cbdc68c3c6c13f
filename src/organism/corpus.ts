// `--corpus organism`: fresh texts of the organism's grammar to look at features on, for commands
// that read a corpus (the CLI passes them in as documents; the engine reads no grammar).

import fs from 'node:fs';
import { Rng } from '../random.ts';
import { generateCorpus } from './grammar-sampler.ts';
import { ORGANISM_MIX } from './train-model.ts';

const ORGANISM_CORPUS = 'organism';
/** A seed no training run used. */
const ORGANISM_CORPUS_SEED = 505;
const ORGANISM_CORPUS_TEXTS = 2000;

/** `count` texts of the organism's grammar, one document each (about 25 tokens a text). */
function organismCorpus(count = ORGANISM_CORPUS_TEXTS, seed = ORGANISM_CORPUS_SEED): string[] {
  return generateCorpus(new Rng(seed), count, ORGANISM_MIX).map((t) => t.text);
}

/**
 * The documents `--corpus organism` stands for (at most `max`), or undefined when `corpus` is
 * anything else or a file of that name exists (then it is read as a corpus file).
 */
export function organismDocuments(corpus: string, max?: number): string[] | undefined {
  if (corpus !== ORGANISM_CORPUS || fs.existsSync(corpus)) return undefined;
  return organismCorpus(max);
}
