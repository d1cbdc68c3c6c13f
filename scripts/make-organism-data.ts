// Writes the model organism's contrastive agreement tasks, data/{simple,nounpp,rc,within_rc}_{train,test}.jsonl,
// the biographies of the SHIFT task, data/bios/{ambiguous,balanced_train,balanced_test}.jsonl,
// a held-out text corpus data/corpus.txt (for sae stats, dashboards), and prints statistics of
// its corpus and tokenizer. Deterministic: the same seeds give the same files.
//   npx tsx scripts/make-organism-data.ts [--count 300] [--out data] [--tokenizer PATH]
// --tokenizer also writes the organism's tokenizer.json to PATH.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '../src/random.ts';
import { organismTaskFiles } from '../src/organism/agreement-tasks.ts';
import { biographyFiles } from '../src/organism/biographies.ts';
import { generateCorpus } from '../src/organism/grammar-sampler.ts';
import { buildOrganismTokenizer } from '../src/organism/tokenizer-builder.ts';
import { lexiconWords } from '../src/organism/lexicon.ts';
import { ORGANISM_MIX } from '../src/organism/train-model.ts';

// Distinct from every seed used in training (model 1, SAEs 101-303, labels 404).
const CORPUS_SEED = 505;
const CORPUS_TEXTS = 2000;

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '300' },
    out: { type: 'string', default: 'data' },
    tokenizer: { type: 'string' },
  },
});
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1)
  throw new Error(`--count: "${values.count}" is not a positive integer`);

fs.mkdirSync(values.out, { recursive: true });
for (const [name, text] of organismTaskFiles(count)) {
  const file = path.join(values.out, name);
  fs.writeFileSync(file, text);
  console.log(`wrote ${file} (${text.trimEnd().split('\n').length} pairs)`);
}

const biosDir = path.join(values.out, 'bios');
fs.mkdirSync(biosDir, { recursive: true });
for (const [name, text] of biographyFiles()) {
  const file = path.join(biosDir, name);
  fs.writeFileSync(file, text);
  console.log(`wrote ${file} (${text.trimEnd().split('\n').length} biographies)`);
}

const corpusFile = path.join(values.out, 'corpus.txt');
const heldOut = generateCorpus(new Rng(CORPUS_SEED), CORPUS_TEXTS, ORGANISM_MIX);
fs.writeFileSync(corpusFile, heldOut.map((t) => t.text).join('\n') + '\n');
console.log(`wrote ${corpusFile} (${CORPUS_TEXTS} texts, the organism's training mix)`);

const tokenizer = buildOrganismTokenizer();
if (values.tokenizer) {
  fs.writeFileSync(values.tokenizer, JSON.stringify(tokenizer.json, null, 1) + '\n');
  console.log(`wrote ${values.tokenizer}`);
}

const corpus = generateCorpus(new Rng(1), 10000);
const lengths = corpus.map((t) => t.words.length).sort((a, b) => a - b);
const quantile = (q: number) =>
  lengths[Math.min(lengths.length - 1, Math.floor(q * lengths.length))];
const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
const used = new Set(corpus.flatMap((t) => t.words.map((w) => w.token)));
console.log(
  `lexicon ${lexiconWords().length} words; tokenizer vocab ${tokenizer.vocabSize} ` +
    `(${tokenizer.ids.size} word tokens, ${used.size} seen in 10000 texts)`,
);
console.log(
  `tokens per text (one word = one token): mean ${mean.toFixed(1)}, median ${quantile(0.5)}, ` +
    `p95 ${quantile(0.95)}, p99 ${quantile(0.99)}, max ${lengths[lengths.length - 1]}`,
);
