// The Node version check that bin/sfc.js and src/cli/main.ts run first: the required version is
// package.json's engines.node (and README states the same), older versions and a Node without
// zlib.crc32 are refused with a message naming both versions, and the exported check exits 1 in
// a real process when given an old version (faked: no old Node is needed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import {
  nodeVersionProblem,
  requiredNodeVersion,
  versionText,
} from '../../src/cli/node-version.mjs';

test('the required version is engines.node, and README states it', () => {
  const engines = JSON.parse(fs.readFileSync('package.json', 'utf8')).engines.node as string;
  const required = requiredNodeVersion();
  assert.equal(`>=${versionText(required)}`, engines);
  assert.match(
    fs.readFileSync('README.md', 'utf8'),
    new RegExp(`Node\\.js ${versionText(required).replace('.', '\\.')} or newer`),
  );
  assert.equal(nodeVersionProblem(process.versions.node), null, 'this Node runs the tests');
});

test('older versions are refused, naming the found and the required version', () => {
  const req: [number, number, number] = [20, 19, 0];
  for (const old of ['18.20.4', '20.14.0', 'v20.18.3', '19.9.0'])
    assert.match(
      nodeVersionProblem(old, req, true)!,
      new RegExp(
        `Node\\.js 20\\.19 or newer is needed; this is Node\\.js v${old.replace(/^v/, '').replace(/\./g, '\\.')}`,
      ),
      old,
    );
  for (const ok of ['20.19.0', 'v20.20.2', '22.12.0', '24.0.0'])
    assert.equal(nodeVersionProblem(ok, req, true), null, ok);
  assert.equal(nodeVersionProblem('20.19.0', [20, 19, 1], true) !== null, true, 'patch counts');
  assert.match(
    nodeVersionProblem('21.7.3', req, false)!,
    /zlib\.crc32 is needed, and Node\.js v21\.7\.3 lacks it/,
  );
  assert.match(
    nodeVersionProblem('banana', req, true)!,
    /cannot read the Node\.js version "banana"/,
  );
});

test('in a process: an old version exits 1 with the message on stderr; this one goes on', () => {
  const run = (version: string) =>
    spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { exitIfUnsupportedNode } from './src/cli/node-version.mjs';
         exitIfUnsupportedNode(${JSON.stringify(version)});
         process.stdout.write('went on');`,
      ],
      { encoding: 'utf8' },
    );
  const old = run('20.14.0');
  assert.equal(old.status, 1);
  assert.equal(old.stdout, '');
  assert.match(
    old.stderr,
    /^sfc: Node\.js 20\.19 or newer is needed; this is Node\.js v20\.14\.0\./,
  );
  const current = run(process.versions.node);
  assert.equal(current.status, 0);
  assert.equal(current.stdout, 'went on');
});
