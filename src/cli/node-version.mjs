// Which Node.js sfc needs, checked first thing by bin/sfc.js and src/cli/main.ts so that an old
// Node gives one clear line instead of a failure deep inside (zlib.crc32, which the ae.pt reader
// uses, appeared in Node 20.15 and 22.2). Plain JavaScript: bin/sfc.js runs it before tsx loads.
// The required version is package.json's engines.node, the one place it is written.

import { readFileSync } from 'node:fs';
import { URL } from 'node:url';
import zlib from 'node:zlib';

/** [major, minor, patch] from package.json's engines.node (">=20.19"). */
export function requiredNodeVersion() {
  const file = new URL('../../package.json', import.meta.url);
  const range = JSON.parse(readFileSync(file, 'utf8')).engines?.node;
  const m = /^>=\s*(\d+)\.(\d+)(?:\.(\d+))?$/.exec(range ?? '');
  if (!m)
    throw new Error(`package.json: engines.node is ${JSON.stringify(range)}, expected ">=X.Y"`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** "20.19" or "20.19.1". */
export const versionText = ([major, minor, patch]) =>
  patch ? `${major}.${minor}.${patch}` : `${major}.${minor}`;

/**
 * Why Node `found` ("20.14.0" or "v20.14.0") cannot run sfc, or null when it can. `hasCrc32`:
 * whether this Node has zlib.crc32 (an odd-numbered release past the minimum may lack it).
 */
export function nodeVersionProblem(
  found,
  required = requiredNodeVersion(),
  hasCrc32 = typeof zlib.crc32 === 'function',
) {
  const parts = String(found).replace(/^v/, '').split('.').map(Number);
  if (parts.length < 2 || parts.some((p) => !Number.isInteger(p)))
    return `cannot read the Node.js version "${found}"; Node.js ${versionText(required)} or newer is needed`;
  const [major, minor, patch = 0] = parts;
  const older =
    major !== required[0]
      ? major < required[0]
      : minor !== required[1]
        ? minor < required[1]
        : patch < required[2];
  if (older)
    return `Node.js ${versionText(required)} or newer is needed; this is Node.js ${found.replace(/^v?/, 'v')}. Install a newer Node (e.g. the current LTS) and run again.`;
  if (!hasCrc32)
    return `zlib.crc32 is needed, and Node.js ${found.replace(/^v?/, 'v')} lacks it; use an LTS release, ${versionText(required)} or newer.`;
  return null;
}

/** Prints the problem and exits 1 when this Node cannot run sfc. */
export function exitIfUnsupportedNode(found = process.versions.node) {
  const problem = nodeVersionProblem(found);
  if (problem === null) return;
  process.stderr.write(`sfc: ${problem}\n`);
  process.exit(1);
}
