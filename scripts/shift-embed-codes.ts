// How an embedding SAE codes the bios task's words: the features (and their activations) of each
// gendered and occupation token's embedding row. docs/shift.md uses it to show why one SAE seed
// fails: the judge then ablates a feature the occupation word shares with a gendered word.
//
//   npx tsx scripts/shift-embed-codes.ts [SAE folder, default models/organism/saes/embed]
//   npx tsx scripts/shift-embed-codes.ts out/shift-sweep/saes/k2-seed307/embed

import path from 'node:path';
import { loadModel } from '../src/model/load.ts';
import { loadDictionary } from '../src/sae/formats.ts';

const WORDS = [
  'nurse',
  'professor',
  'he',
  'she',
  'He',
  'She',
  'his',
  'her',
  'man',
  'woman',
  'father',
  'mother',
  'boy',
  'girl',
  'uncle',
  'aunt',
];

const folder = process.argv[2] ?? path.join('models', 'organism', 'saes', 'embed');
const { config, weights, tokenizer } = loadModel(path.join('models', 'organism'), {
  tokenizer: true,
});
if (!tokenizer) throw new Error('models/organism: no tokenizer.json');
const d = config.hiddenSize;
const dict = loadDictionary(folder, 'embed');
for (const word of WORDS) {
  // Inside a text every word but the first is " word"; that is the token SHIFT's texts use most.
  const ids = tokenizer.encode(`. ${word}`);
  const id = ids[ids.length - 1];
  const f = dict.encode(weights.embedIn.slice(id * d, (id + 1) * d), 1);
  const code = [...f]
    .map((v, j) => [j, v] as const)
    .filter(([, v]) => v !== 0)
    .sort((a, b) => b[1] - a[1])
    .map(([j, v]) => `${j} (${v.toFixed(2)})`);
  console.log(`" ${word}"`.padEnd(13), code.join(' + '));
}
