// `sfc forward` and `sfc info` on the tiny random checkpoints of every family
// (test/fixtures/families/*), against the PyTorch logits, and the BOS a prompt gets with the
// hand-built tokenizers of test/fixtures/tokenizers/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBatch } from '../../src/model/gptneox.ts';
import { loadTransformer } from '../../src/model/load-family.ts';

const cliEntry = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const fixture = (family: string) =>
  fileURLToPath(new URL(`../fixtures/families/${family}/`, import.meta.url));
const tokenizers = fileURLToPath(new URL('../fixtures/tokenizers/', import.meta.url));

function sfc(...args: string[]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', cliEntry, ...args], {
    encoding: 'utf8',
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-cli-families-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of a family's folder with one of the hand-built tokenizers. */
function withTokenizer(family: string, tokenizer: string): string {
  const dir = path.join(tmp, `${family}-${tokenizer}`);
  fs.cpSync(fixture(family), dir, { recursive: true });
  fs.copyFileSync(path.join(tokenizers, tokenizer), path.join(dir, 'tokenizer.json'));
  return dir;
}

interface ForwardJson {
  tokens: number[];
  bos: boolean;
  logits: number[][];
}

for (const family of ['gpt2', 'llama', 'qwen2', 'qwen3', 'gemma2']) {
  test(`sfc forward --ids on ${family} prints the PyTorch reference's logits`, () => {
    const ref = JSON.parse(
      fs.readFileSync(path.join(fixture(family), 'expected.json'), 'utf8'),
    ) as {
      ids: number[][];
      lengths: number[];
      logits: number[];
    };
    const ids = ref.ids[0].slice(0, ref.lengths[0]); // the longest example: no padding
    const out = sfc('forward', '--model', fixture(family), '--ids', ids.join(','), '--json');
    assert.equal(out.code, 0, out.stderr);
    const got = JSON.parse(out.stdout) as ForwardJson;
    assert.deepEqual(got.tokens, ids);
    assert.equal(got.bos, false);
    const flat = got.logits.flat();
    const want = ref.logits.slice(0, flat.length); // example 0's rows come first
    let worst = 0;
    for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(flat[i] - want[i]));
    const scale = Math.max(...want.map(Math.abs));
    assert.ok(worst <= 1e-4 * scale, `${family}: error ${worst / scale} of the largest logit`);
  });
}

test("sfc forward --prompt adds BOS as the model's tokenizer does; --no-bos leaves it out", () => {
  const dir = withTokenizer('gemma2', 'chars-bos.tokenizer.json');
  const { model } = loadTransformer(dir);
  const bare = [22, 10, 7, 29, 5, 3, 22]; // "the cat"
  for (const [flags, tokens] of [
    [[], [1, ...bare]],
    [['--no-bos'], bare],
  ] as const) {
    const out = sfc('forward', '--model', dir, '--prompt', 'the cat', '--json', ...flags);
    assert.equal(out.code, 0, out.stderr);
    const got = JSON.parse(out.stdout) as ForwardJson;
    assert.deepEqual(got.tokens, tokens);
    assert.equal(got.bos, tokens[0] === 1);
    const want = model.forward(makeBatch([[...tokens]]), { logits: 'all' }).logits;
    assert.deepEqual(got.logits.flat().map(Math.fround), Array.from(want));
    assert.match(
      out.stderr,
      flags.length
        ? /^bos: none added \(--no-bos\)$/m
        : /^bos: added <bos> \(id 1\); tokenizer\.json's post_processor adds <bos>; --no-bos leaves it out$/m,
    );
  }
  // the text output says the same and lists the BOS as the first token
  const out = sfc('forward', '--model', dir, '--prompt', 'the cat', '--top', '2');
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^tokens: 1 "<bos>" \| 22 "t" \| /);
  assert.equal(out.stdout.trim().split('\n').length, 2 + 2);
});

test('sfc forward --prompt without a BOS template adds none unless --bos, which needs a BOS token', () => {
  const dir = withTokenizer('qwen2', 'chars-no-bos.tokenizer.json');
  let out = sfc('forward', '--model', dir, '--prompt', 'the cat', '--json');
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual((JSON.parse(out.stdout) as ForwardJson).tokens, [22, 10, 7, 29, 5, 3, 22]);
  assert.match(out.stderr, /^bos: none added; tokenizer\.json's post_processor adds no BOS$/m);
  out = sfc('forward', '--model', dir, '--prompt', 'the cat', '--bos');
  assert.equal(out.code, 1);
  assert.match(
    out.stderr,
    /^sfc: .*a beginning-of-sequence token was asked for, but the tokenizer names none/,
  );
  // with a tokenizer_config.json naming one, --bos adds it
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '{"bos_token": "<bos>"}');
  out = sfc('forward', '--model', dir, '--prompt', 'the cat', '--bos', '--json');
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual((JSON.parse(out.stdout) as ForwardJson).tokens.slice(0, 2), [1, 22]);
  assert.match(out.stderr, /^bos: added <bos> \(id 1\) \(--bos\)$/m);
});

test('sfc forward: bad input on a family folder gets one clear line', () => {
  const dir = withTokenizer('llama', 'chars-bos.tokenizer.json');
  const cases: [string[], RegExp][] = [
    // 16 characters + BOS = 17 tokens, context 16
    [
      ['--model', dir, '--prompt', 'abcdefghijklmnop'],
      /the prompt has 17 tokens \(BOS included\), more than the model's context of 16 positions/,
    ],
    [
      ['--model', dir, '--ids', '1,2', '--bos'],
      /--bos applies to --prompt; --ids are run as given/,
    ],
    [
      ['--model', fixture('llama'), '--prompt', 'the'],
      /no tokenizer\.json; pass token ids with --ids/,
    ],
    [['--model', fixture('llama'), '--ids', '1,31'], /31/],
  ];
  for (const [args, message] of cases) {
    const out = sfc('forward', ...args);
    assert.equal(out.code, 1, args.join(' '));
    assert.match(out.stderr, /^sfc: /);
    assert.match(out.stderr, message);
    assert.doesNotMatch(out.stderr, /\n\s+at /, 'no stack trace');
  }
  const unknown = path.join(tmp, 'mistral');
  fs.cpSync(fixture('llama'), unknown, { recursive: true });
  const config = JSON.parse(fs.readFileSync(path.join(unknown, 'config.json'), 'utf8'));
  config.architectures = ['MistralForCausalLM'];
  fs.writeFileSync(path.join(unknown, 'config.json'), JSON.stringify(config));
  const out = sfc('forward', '--model', unknown, '--ids', '1');
  assert.equal(out.code, 1);
  assert.match(
    out.stderr,
    /^sfc: .*MistralForCausalLM is not supported; supported: GPT2LMHeadModel/,
  );
});

test('sfc info --json on a family: architecture, every site including attn_z, parameter count', () => {
  const dir = withTokenizer('qwen3', 'chars-no-bos.tokenizer.json');
  const out = sfc('info', '--model', dir, '--json');
  assert.equal(out.code, 0, out.stderr);
  const info = JSON.parse(out.stdout) as {
    architecture: string;
    parameters: number;
    sites: string[];
    tokenizerVocab: number;
    bos: { adds: boolean };
  };
  assert.equal(info.architecture, 'Qwen3ForCausalLM');
  assert.deepEqual(info.sites, [
    'embed',
    ...[0, 1].flatMap((L) => [`attn_z_${L}`, `attn_${L}`, `mlp_${L}`, `resid_${L}`]),
  ]);
  // the checkpoint's own tensors, counted independently of the engine
  const header = (() => {
    const bytes = fs.readFileSync(path.join(dir, 'model.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    return JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
      string,
      { shape?: number[] }
    >;
  })();
  const total = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .reduce((sum, [, t]) => sum + t.shape!.reduce((a, b) => a * b, 1), 0);
  assert.equal(info.parameters, total);
  assert.equal(info.tokenizerVocab, 30);
  assert.equal(info.bos.adds, false);
  const text = sfc('info', '--model', dir);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^family\s+Qwen3ForCausalLM$/m);
  assert.match(text.stdout, /^tokenizer\s+does not add a BOS token/m);
});
