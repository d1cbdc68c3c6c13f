// `sfc intervene` on the shipped organism, in-process: its JSON equals the library's numbers
// (which interventions.test.ts checks against brute force), and its errors name the bad part.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register } from '../../src/cli/commands/intervene.ts';
import { runCommand } from '../helpers/run-command.ts';
import { defaultModelDir, loadModel } from '../../src/model/load.ts';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { openSaes } from '../../src/sae/library.ts';
import { parseIntervention, resolveInterventions } from '../../src/steer/intervention.ts';
import { generate, klDivergence, lastLogits } from '../../src/steer/run.ts';
import { readCorpus } from '../../src/data/corpus.ts';
import { computeFeatureStats } from '../../src/steer/feature-stats.ts';
import { loadTransformer } from '../../src/model/load-family.ts';
import { IdentityDictionary } from '../../src/sae/dictionary.ts';

const dir = defaultModelDir();
const { config, weights, tokenizer } = loadModel(dir, { tokenizer: true });
const model = new GptNeoX(config, weights);
const library = openSaes(path.join(dir, 'saes'), config.numLayers, { model });
const context = { model, dictionary: (s: string) => library.get(s) };
const PROMPT = 'The teacher near the desk';
const ids = tokenizer!.encode(PROMPT);

// A small corpus keeps the statistics quick; the cache goes to a temporary folder.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-intervene-'));
const corpus = path.join(tmp, 'corpus.txt');
fs.writeFileSync(corpus, readCorpus('data/corpus.txt', 200).join('\n') + '\n');
const common = ['--corpus', corpus, '--cache', path.join(tmp, 'cache')];

const intervene = (...args: string[]) => runCommand(register, ['intervene', ...args, ...common]);

test('--json: logits before are the plain forward, after the library with the same interventions', async () => {
  const dos = ['resid_3:485@last=zero', 'attn_3:457@-1=set=0.5', 'resid_1:76@1=steer=2max'];
  const out = JSON.parse(
    await intervene('--prompt', PROMPT, ...dos.flatMap((d) => ['--do', d]), '--json'),
  );
  assert.deepEqual(out.tokens, ids);
  const plain = model.forward(makeBatch([ids]), { logits: 'last' }).logits;
  assert.deepEqual(out.logits_before, Array.from(plain));
  const docs = readCorpus(corpus).map((t) => tokenizer!.encode(t));
  const stats = (s: string) => computeFeatureStats(model, library.get(s), docs);
  const ivs = resolveInterventions(dos.map(parseIntervention), { ...context, stats });
  const after = lastLogits(context, ids, ivs);
  assert.deepEqual(out.logits_after, Array.from(after));
  assert.ok(Math.abs(out.kl - klDivergence(plain, after)) < 1e-9);
  assert.ok(out.kl > 0.01, `the steering changes the distribution (KL ${out.kl})`);
  // Listed in layer order, the order they apply in.
  assert.deepEqual(out.interventions, [dos[2], dos[1], dos[0]]);
  // The statistics were cached: a second run reads them and gives the same logits.
  assert.equal(fs.readdirSync(path.join(tmp, 'cache')).length, 1);
  const again = JSON.parse(
    await intervene('--prompt', PROMPT, ...dos.flatMap((d) => ['--do', d]), '--json'),
  );
  assert.deepEqual(again.logits_after, out.logits_after);
});

test('text output: the tokens, the table, KL, and continuations with and without', async () => {
  const out = await intervene(
    '--prompt',
    PROMPT,
    '--do',
    'resid_1:76@1=steer=8max',
    '--generate',
    '4',
    '--top',
    '3',
  );
  assert.match(out, /tokens: 0 "The" \| 1 " teacher"/);
  assert.match(out, /next token +before +after +logit change/);
  assert.match(out, /KL\(before ‖ after\) = \d+\.\d{4} nats/);
  const decode = (l: number[]) => JSON.stringify(tokenizer!.decode(l));
  const stats = () =>
    computeFeatureStats(
      model,
      library.get('resid_1'),
      readCorpus(corpus).map((t) => tokenizer!.encode(t)),
    );
  const ivs = resolveInterventions([parseIntervention('resid_1:76@1=steer=8max')], {
    ...context,
    stats,
  });
  assert.ok(out.includes(`without: ${decode(generate(context, ids, 4))}`), out);
  assert.ok(out.includes(`with:    ${decode(generate(context, ids, 4, ivs))}`), out);
});

test('--data: the example metric, and --all the mean over the file', async () => {
  const one = JSON.parse(
    await intervene(
      '--data',
      'data/nounpp_test.jsonl',
      '--example',
      '2',
      '--do',
      'resid_3:485@last=zero',
      '--json',
    ),
  );
  const before = Float32Array.from(one.logits_before);
  const after = Float32Array.from(one.logits_after);
  const [sg, pl] = [tokenizer!.encode(' has')[0], tokenizer!.encode(' have')[0]];
  // Line 2 of nounpp_test: "The poets beside the man" → " have" (clean) vs " has".
  assert.equal(one.metric.line, 2);
  assert.ok(Math.abs(one.metric.before - (before[pl] - before[sg])) < 1e-5);
  assert.ok(Math.abs(one.metric.after - (after[pl] - after[sg])) < 1e-5);
  const all = JSON.parse(
    await intervene(
      '--data',
      'data/simple_test.jsonl',
      '--all',
      '--do',
      'resid_3:485@last=zero',
      '--json',
    ),
  );
  assert.equal(all.n, 300);
  assert.equal(all.accuracy_before, 1);
  const mean = all.examples.reduce((s: number, e: { before: number }) => s + e.before, 0) / 300;
  assert.ok(Math.abs(all.logit_diff_before - mean) < 1e-9);
});

test('errors name the bad part and what was expected', async () => {
  await assert.rejects(intervene('--prompt', PROMPT), /no interventions: give at least one --do/);
  await assert.rejects(
    intervene('--prompt', PROMPT, '--do', 'resid_7:1=zero'),
    /unknown site "resid_7"; this model's sites are embed, attn_z_0, attn_0, mlp_0, resid_0/,
  );
  await assert.rejects(
    intervene('--prompt', PROMPT, '--do', 'resid_0:1024=zero'),
    /feature 1024 is out of range: the dictionary at resid_0 has 1024 features \(0\.\.1023\)/,
  );
  await assert.rejects(
    intervene('--prompt', PROMPT, '--saes', 'neurons', '--do', 'resid_0:128=zero'),
    /the site at resid_0 has 128 neurons/,
  );
  await assert.rejects(
    intervene('--prompt', PROMPT, '--do', 'resid_0:3@9=zero'),
    /position 9 is outside the prompt's 5 tokens/,
  );
  await assert.rejects(
    intervene('--prompt', PROMPT, '--do', 'resid_0:3=scale'),
    /scale "" is not a number; expected scale=K/,
  );
  await assert.rejects(
    intervene('--prompt', PROMPT, '--data', 'data/simple_test.jsonl', '--do', 'resid_0:3=zero'),
    /exactly one of --prompt TEXT, --ids 1,2,3 or --data FILE/,
  );
});

const fixture = (family: string) => path.join('test', 'fixtures', 'families', family);

for (const family of ['gpt2', 'llama', 'qwen2', 'qwen3', 'gemma2']) {
  test(`${family}: --ids with --saes neurons on the generic engine, logits and generation as the library's`, async () => {
    const loaded = loadTransformer(fixture(family));
    const m = loaded.model;
    const ref = JSON.parse(fs.readFileSync(path.join(fixture(family), 'expected.json'), 'utf8'));
    const ids: number[] = ref.ids[0].slice(0, 4);
    const dos = ['resid_0:3@-1=set=0.5', 'mlp_1:2@all+generated=scale=0'];
    const out = JSON.parse(
      await runCommand(register, [
        'intervene',
        '--model',
        fixture(family),
        '--saes',
        'neurons',
        '--ids',
        ids.join(','),
        ...dos.flatMap((d) => ['--do', d]),
        '--generate',
        '3',
        '--json',
      ]),
    );
    const neurons = {
      model: m,
      dictionary: (s: string) => new IdentityDictionary(s, m.siteWidth(s)),
    };
    const ivs = resolveInterventions(dos.map(parseIntervention), neurons);
    assert.deepEqual(out.logits_before, Array.from(m.forward(makeBatch([ids])).logits));
    assert.deepEqual(out.logits_after, Array.from(lastLogits(neurons, ids, ivs)));
    assert.ok(out.kl > 0, 'the interventions change the distribution');
    assert.deepEqual(out.generated.with.ids, generate(neurons, ids, 3, ivs));
    assert.deepEqual(out.generated.without.ids, generate(neurons, ids, 3));
  });
}
