// Text corpora: one document per non-empty line.

import { readTextFile } from '../io/text-file.ts';

/** The documents of a corpus file, at most `maxDocuments` of them. */
export function readCorpus(file: string, maxDocuments = Infinity): string[] {
  const docs = readTextFile(file)
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '');
  if (docs.length === 0) throw new Error(`${file}: the corpus has no documents (one per line)`);
  return docs.slice(0, maxDocuments);
}
