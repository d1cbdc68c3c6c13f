import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { saveModel } from '../../src/model/save.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';

const cliEntry = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function sfc(...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', cliEntry, ...args], {
    encoding: 'utf8',
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

// A random model with the organism's tokenizer, so that --prompt works too.
const tokenizerJson = buildOrganismTokenizer().json;
const tokenizer = Tokenizer.fromJson(tokenizerJson);
const config = tinyConfig({ vocabSize: 832, numLayers: 1 });
const weights = randomWeights(config, 11);
const dir = mkdtempSync(join(tmpdir(), 'sfc-cli-'));
const tokenizerPath = join(dir, 'source-tokenizer.json');
writeFileSync(tokenizerPath, JSON.stringify(tokenizerJson));
saveModel(dir, config, weights, { tokenizer: tokenizerPath });
const model = new GptNeoX(config, weights);

test('sfc forward --json prints every position’s full logits, equal to the engine’s', () => {
  const ids = [5, 17, 300, 2];
  const out = sfc('forward', '--model', dir, '--ids', ids.join(','), '--json');
  assert.equal(out.code, 0, out.stderr);
  const parsed = JSON.parse(out.stdout) as { tokens: number[]; logits: number[][] };
  assert.deepEqual(parsed.tokens, ids);
  assert.equal(parsed.logits.length, ids.length);
  const want = model.forward(makeBatch([ids]), { logits: 'all' }).logits;
  for (let t = 0; t < ids.length; t++) {
    assert.equal(parsed.logits[t].length, config.vocabSize);
    for (let v = 0; v < config.vocabSize; v++) {
      assert.equal(Math.fround(parsed.logits[t][v]), want[t * config.vocabSize + v]);
    }
  }
});

test('sfc forward --prompt tokenises with the folder’s tokenizer and lists the top tokens', () => {
  const prompt = 'The teachers near the desk';
  const ids = tokenizer.encode(prompt);
  const out = sfc('forward', '--model', dir, '--prompt', prompt, '--top', '3');
  assert.equal(out.code, 0, out.stderr);
  const logits = model.forward(makeBatch([ids]), { logits: 'last' }).logits;
  const best = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a])[0];
  const rows = out.stdout.trim().split('\n');
  assert.match(rows[0], new RegExp(`^tokens: ${ids[0]} `));
  assert.equal(rows.length, 2 + 3, out.stdout);
  assert.match(rows[2], new RegExp(`\\s${best}\\s`), `top row should be token ${best}`);
});

test('sfc info names every site', () => {
  const out = sfc('info', '--model', dir, '--json');
  assert.equal(out.code, 0, out.stderr);
  const info = JSON.parse(out.stdout) as {
    architecture: string;
    sites: string[];
    parameters: number;
  };
  assert.equal(info.architecture, 'GPTNeoXForCausalLM');
  assert.deepEqual(info.sites, ['embed', 'attn_z_0', 'attn_0', 'mlp_0', 'resid_0']);
  const d = config.hiddenSize;
  const f = config.intermediateSize;
  const perLayer = 4 * d + 3 * d * d + 3 * d + d * d + d + f * d + f + d * f + d;
  assert.equal(info.parameters, 2 * config.vocabSize * d + perLayer + 2 * d);
});

test('bad input gets one clear line, not a stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['forward', '--model', join(dir, 'nope'), '--ids', '1'], /no such model folder/],
    [['forward', '--model', dir, '--ids', '1,x'], /--ids: "x" is not a token id/],
    [['forward', '--model', dir, '--ids', '1', '--prompt', 'The'], /exactly one of --prompt/],
    [['forward', '--model', dir, '--ids', '1,900'], /900/],
    [['forward', '--model', dir, '--ids', '1', '--top', '0'], /--top: expected a positive integer/],
  ];
  for (const [args, message] of cases) {
    const out = sfc(...args);
    assert.equal(out.code, 1, args.join(' '));
    assert.match(out.stderr, /^sfc: /);
    assert.match(out.stderr, message);
    assert.doesNotMatch(out.stderr, /\n\s+at /, 'no stack trace');
  }
});
