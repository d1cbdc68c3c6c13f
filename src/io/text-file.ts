// Reading whole text and JSON files with errors that name the file, for every reader.

import fs from 'node:fs';
import path from 'node:path';

/** The file's text as UTF-8; a missing or unreadable file is an error naming it. */
export function readTextFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `${file}: no such file`
        : `${file}: cannot read (${(e as Error).message})`,
      { cause: e },
    );
  }
}

/** Parses JSON read from `file`; a syntax error names the file. Validation is the caller's. */
function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

export function readJsonFile(file: string): unknown {
  return parseJsonText(readTextFile(file), file);
}

/** `file` itself, or `file/name` when `file` is a folder (readers take either). */
export function fileInFolder(file: string, name: string): string {
  return fs.statSync(file, { throwIfNoEntry: false })?.isDirectory() === true
    ? path.join(file, name)
    : file;
}
