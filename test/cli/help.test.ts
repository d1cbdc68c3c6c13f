// CLI help is wrapped by commander to the terminal's width, so the descriptions in the source
// must not be wrapped by hand as well (that gave "fraction of\nvariance explained" cut in two at
// odd places). Option and argument descriptions are single lines; a command description breaks
// lines only between paragraphs, list items, examples and code, never inside a sentence.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram, wrapHelp } from '../../src/cli/program.ts';

function commands(c: Command, prefix = ''): [string, Command][] {
  const name = `${prefix}${c.name()}`;
  return [[name, c], ...c.commands.flatMap((s) => commands(s, `${name} `))];
}

const indent = (line: string) => line.length - line.trimStart().length;

/** Line breaks inside a sentence: hand-wrapped prose or a hand-wrapped list item. */
export function breaksInsideSentences(text: string): string[] {
  const lines = text.split('\n');
  const bad: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const [prev, next] = [lines[i - 1], lines[i]];
    if (prev.trim() === '' || next.trim() === '') continue;
    const prose = indent(prev) === 0 && indent(next) === 0 && !/[.:!?]$/.test(prev.trimEnd());
    const item = indent(prev) > 0 && indent(next) > indent(prev) && !prev.endsWith('\\');
    if (prose || item) bad.push(`${JSON.stringify(prev)} / ${JSON.stringify(next)}`);
  }
  return bad;
}

test('the rule catches what it is for', () => {
  assert.equal(breaksInsideSentences('FVE (fraction of\nvariance explained)').length, 1);
  assert.equal(breaksInsideSentences('  1. train a probe (the\n     penultimate layer)').length, 1);
  assert.deepEqual(breaksInsideSentences('One paragraph.\n\nExamples:\n  sfc a \\\n      --b'), []);
  assert.deepEqual(breaksInsideSentences('Methods:\n  ig   one\n  exact  two'), []);
});

test('every option and argument description is one line', () => {
  const all = commands(buildProgram());
  assert.ok(all.length > 15, `${all.length} commands`);
  for (const [name, c] of all) {
    for (const o of c.options)
      assert.doesNotMatch(
        o.description,
        /\n/,
        `${name} ${o.flags}: ${JSON.stringify(o.description)}`,
      );
    for (const a of c.registeredArguments)
      assert.doesNotMatch(a.description, /\n/, `${name} <${a.name()}>`);
  }
});

test('command descriptions break lines only between paragraphs, items and examples', () => {
  for (const [name, c] of commands(buildProgram())) {
    assert.deepEqual(breaksInsideSentences(c.description()), [], name);
    assert.doesNotMatch(c.summary(), /\n/, `${name} summary`);
  }
});

test('--help wraps to the terminal: at 80 columns only unbreakable words run past it', () => {
  for (const [name, c] of commands(buildProgram())) {
    c.configureOutput({ getOutHelpWidth: () => 80, getOutHasColors: () => false });
    // Past the width: a single word (a path, a long flag) or an example command, nothing else.
    const long = c
      .helpInformation()
      .split('\n')
      .filter((l) => l.length > 80 && !/^\s*\S+$/.test(l) && !/^\s+sfc /.test(l));
    assert.deepEqual(long, [], `sfc ${name} --help at 80 columns`);
    c.configureOutput({});
  }
});

test('wrapped list items continue under their text; aligned columns keep their spacing', () => {
  const item = '  2. find the circuit of the probe logit, signed so that larger means wrong';
  assert.equal(
    wrapHelp(item, 44),
    ['  2. find the circuit of the probe logit,', '     signed so that larger means wrong'].join(
      '\n',
    ),
  );
  assert.equal(wrapHelp('  ig      integrated gradients', 44), '  ig      integrated gradients');
  assert.equal(
    wrapHelp('plain words that run on past the width', 40),
    'plain words that run on past the width',
  );
  assert.equal(
    wrapHelp('plain words that run on and on past the width of forty', 40),
    'plain words that run on and on past the\nwidth of forty',
  );
});
