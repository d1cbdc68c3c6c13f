// The prompt `sfc start` (npm start) draws an attribution graph of: the first example's clean
// prefix of the held-out across-RC file, with an error naming the file and line otherwise.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { firstPrompt } from '../../src/cli/commands/start.ts';

test('the first clean prefix of data/rc_test.jsonl', () => {
  const first = JSON.parse(fs.readFileSync('data/rc_test.jsonl', 'utf8').split('\n')[0]);
  assert.equal(firstPrompt('data/rc_test.jsonl'), first.clean_prefix);
  assert.equal(firstPrompt('data/rc_test.jsonl'), 'The friend that the skaters love');
});

test('a file whose first example has no clean_prefix is an error naming it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-start-prompt-'));
  try {
    const file = path.join(dir, 'rc_test.jsonl');
    fs.writeFileSync(file, '\n{"prefix": "The dog"}\n');
    assert.throws(
      () => firstPrompt(file),
      /rc_test\.jsonl:2: expected an example with a clean_prefix string/,
    );
    fs.writeFileSync(file, '');
    assert.throws(() => firstPrompt(file), /rc_test\.jsonl:1: expected an example/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
