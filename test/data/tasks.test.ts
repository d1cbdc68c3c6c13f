import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '../../src/model/tokenizer.ts';
import { describeTask, loadTask, parseTask, scoreTask, taskBatches } from '../../src/data/tasks.ts';
import { buildOrganismTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { GptNeoX, makeBatch } from '../../src/model/gptneox.ts';
import { saveModel } from '../../src/model/save.ts';
import { zeroWeights } from '../../src/model/weights.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { register } from '../../src/cli/commands/tasks.ts';
import { runCommand } from '../helpers/run-command.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-tasks-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const built = buildOrganismTokenizer();
const tokenizer = Tokenizer.fromJson(built.json);
const line = (o: object) => JSON.stringify(o);

const GOOD = {
  clean_prefix: 'The teacher',
  patch_prefix: 'The teachers',
  clean_answer: ' is',
  patch_answer: ' are',
  case: 'singular',
};
const LINES = [
  line(GOOD),
  '',
  line({ ...GOOD, clean_answer: ' zebra' }), // 3: several tokens
  line({ ...GOOD, patch_answer: ' arezz' }), // 4
  line({ ...GOOD, patch_prefix: 'The teachers near' }), // 5: longer patch
  line({ clean_prefix: 'The guards that the man', clean_answer: ' likes', patch_answer: ' like' }), // 6: single input
  line({ clean_prefix: 'The guard', clean_answer: ' is' }), // 7: no patch at all
];

test('parseTask keeps usable examples and counts the dropped ones by reason', () => {
  const task = parseTask(LINES.join('\n'), 'x.jsonl', tokenizer);
  assert.equal(task.total, 6);
  assert.deepEqual(
    task.examples.map((e) => e.line),
    [1, 6, 7],
  );
  assert.deepEqual(task.dropped, {
    clean_answer_not_one_token: 1,
    patch_answer_not_one_token: 1,
    prefix_lengths_differ: 1,
    prefix_too_long: 0,
  });
  assert.deepEqual(task.droppedLines, [
    { line: 3, reason: 'clean_answer_not_one_token' },
    { line: 4, reason: 'patch_answer_not_one_token' },
    { line: 5, reason: 'prefix_lengths_differ' },
  ]);
  const [first, single, bare] = task.examples;
  assert.deepEqual(first.clean, tokenizer.encode('The teacher'));
  assert.deepEqual(first.patch, tokenizer.encode('The teachers'));
  assert.equal(first.cleanAnswerId, tokenizer.tokenId(' is'));
  assert.equal(first.patchAnswerId, tokenizer.tokenId(' are'));
  assert.equal(first.case, 'singular');
  assert.equal(single.patch, null);
  assert.equal(single.patchAnswerId, tokenizer.tokenId(' like'));
  assert.equal(bare.patchAnswerId, null);
  assert.match(
    describeTask(task),
    /kept 3 of 6 examples \(dropped: 1 clean_answer_not_one_token, 1 patch_answer_not_one_token, 1 prefix_lengths_differ\)/,
  );
});

test('limit, maxLength and addAnswerSpace', () => {
  assert.equal(parseTask(LINES.join('\n'), 'x', tokenizer, { limit: 2 }).examples.length, 2);
  const short = parseTask(LINES.join('\n'), 'x', tokenizer, { maxLength: 3 });
  assert.deepEqual(
    short.examples.map((e) => e.line),
    [1, 7],
  );
  assert.equal(short.dropped.prefix_too_long, 1);
  const noSpace = line({ ...GOOD, clean_answer: 'is', patch_answer: 'are' });
  // 'is' is not a token of the organism's tokenizer (only ' is' is)
  assert.equal(parseTask(noSpace, 'x', tokenizer).dropped.clean_answer_not_one_token, 1);
  const oneToken = parseTask(
    line({ ...GOOD, clean_answer: 'The', patch_answer: '.' }),
    'x',
    tokenizer,
  );
  assert.equal(oneToken.examples.length, 1);
  assert.equal(oneToken.answersWithoutSpace, 1);
  assert.match(describeTask(oneToken), /without a leading space/);
  const spaced = parseTask(noSpace, 'x', tokenizer, { addAnswerSpace: true });
  assert.equal(spaced.examples[0].cleanAnswerId, tokenizer.tokenId(' is'));
  assert.equal(spaced.examples[0].patchAnswerId, tokenizer.tokenId(' are'));
  assert.equal(spaced.answersWithoutSpace, 0);
});

test('bos: prefixes start with BOS as asked, answers stay bare, maxLength counts the BOS', () => {
  const chars = (name: string) =>
    Tokenizer.fromFile(
      fileURLToPath(new URL(`../fixtures/tokenizers/${name}.tokenizer.json`, import.meta.url)),
    );
  const withBos = chars('chars-bos');
  const text = line({
    clean_prefix: 'the cat',
    patch_prefix: 'the cab',
    clean_answer: 's',
    patch_answer: 't',
  });
  const bare = withBos.encode('the cat');
  const before = parseTask(text, 'x', withBos);
  assert.deepEqual(before.examples[0].clean, bare, 'no option: as before, no BOS');
  assert.equal(before.bos, false);
  const auto = parseTask(text, 'x', withBos, { bos: 'auto' });
  assert.equal(auto.bos, true);
  assert.deepEqual(auto.examples[0].clean, [1, ...bare]);
  assert.deepEqual(auto.examples[0].patch, [1, ...withBos.encode('the cab')]);
  assert.equal(auto.examples[0].cleanAnswerId, withBos.encode('s')[0]);
  assert.equal(auto.examples[0].patchAnswerId, withBos.encode('t')[0]);
  assert.deepEqual(parseTask(text, 'x', withBos, { bos: 'never' }).examples[0].clean, bare);
  assert.equal(parseTask(text, 'x', withBos, { bos: 'auto', maxLength: 7 }).examples.length, 0);
  assert.equal(parseTask(text, 'x', withBos, { bos: 'never', maxLength: 7 }).examples.length, 1);
  const plain = parseTask(text, 'x', chars('chars-no-bos'), { bos: 'auto' });
  assert.equal(plain.bos, false);
  assert.deepEqual(plain.examples[0].clean, bare);
});

test('bad lines give errors naming the file and line', () => {
  assert.throws(
    () => parseTask(`${line(GOOD)}\n{"clean_prefix": "The`, 'bad.jsonl', tokenizer),
    /^Error: bad\.jsonl:2: not valid JSON/,
  );
  assert.throws(
    () =>
      parseTask(
        `${line(GOOD)}\n\n${line({ clean_prefix: 'The teacher' })}`,
        'bad.jsonl',
        tokenizer,
      ),
    /bad\.jsonl:3: not a task example \(clean_answer: .*\)/,
  );
  assert.throws(
    () => parseTask(line({ ...GOOD, patch_prefix: 3 }), 'bad.jsonl', tokenizer),
    /bad\.jsonl:1: .*patch_prefix/,
  );
  assert.throws(
    () => parseTask('[1, 2', 'arr.json', tokenizer),
    /arr\.json: starts with "\[" but is not a valid JSON array/,
  );
  assert.throws(
    () => parseTask(`[${line(GOOD)}, 5]`, 'arr.json', tokenizer),
    /arr\.json: element 2: not a task example/,
  );
  assert.throws(
    () => loadTask(path.join(tmp, 'missing.jsonl'), tokenizer),
    /missing\.jsonl: no such file/,
  );
});

test("loadTask reads the paper's *.json (one object per line), .jsonl and JSON arrays alike", () => {
  const objects = [
    GOOD,
    {
      ...GOOD,
      clean_prefix: 'The guards',
      patch_prefix: 'The guard',
      clean_answer: ' are',
      patch_answer: ' is',
      case: 'plural',
    },
  ];
  const files = {
    'paper.json': objects.map(line).join('\n') + '\n',
    'ours.jsonl': objects.map(line).join('\n'),
    'array.json': JSON.stringify(objects, null, 2),
  };
  const results = Object.entries(files).map(([name, text]) => {
    fs.writeFileSync(path.join(tmp, name), text);
    return loadTask(path.join(tmp, name), tokenizer);
  });
  for (const r of results) {
    assert.equal(r.examples.length, 2);
    assert.deepEqual(
      r.examples.map((e) => e.patch),
      results[0].examples.map((e) => e.patch),
    );
  }
  // the committed organism files load without drops
  const rc = loadTask(new URL('../../data/rc_test.jsonl', import.meta.url).pathname, tokenizer);
  assert.equal(rc.examples.length, 300);
  assert.equal(rc.total, 300);
});

test('taskBatches: right-padded, pairs and single inputs kept apart', () => {
  const task = parseTask(LINES.join('\n'), 'x.jsonl', tokenizer);
  const batches = taskBatches(task.examples, 8, 0);
  assert.equal(batches.length, 2);
  const [pairs, singles] = batches;
  assert.deepEqual(
    pairs.examples.map((e) => e.line),
    [1],
  );
  assert.ok(pairs.patch);
  assert.deepEqual(
    singles.examples.map((e) => e.line),
    [6, 7],
  );
  assert.equal(singles.patch, null);
  assert.equal(singles.patchAnswers, null); // line 7 has no patch answer
  assert.equal(singles.clean.seqLen, 5);
  assert.deepEqual(singles.clean.lengths, [5, 2]);
  assert.deepEqual(
    [...singles.clean.ids.subarray(5, 10)],
    [...tokenizer.encode('The guard'), 0, 0, 0],
  );
  assert.throws(() => taskBatches(task.examples, 0), /batch size 0/);
});

// ---------------------------------------------------------------------------------------------
// Scoring, against logits computed one example at a time

const config = tinyConfig({ vocabSize: built.vocabSize, rotaryPct: 0.25 });
const randomModelWeights = () => randomWeights(config, 5);

/** accuracy, mean logit difference and n, one forward per example, no padding. */
function bruteForce(model: GptNeoX, file: string) {
  const V = config.vocabSize;
  const task = loadTask(file, tokenizer);
  let correct = 0;
  let sum = 0;
  for (const e of task.examples) {
    const logits = model.forward(makeBatch([e.clean]), { logits: 'all' }).logits;
    const last = (e.clean.length - 1) * V;
    const diff = logits[last + e.cleanAnswerId] - logits[last + e.patchAnswerId!];
    sum += diff;
    if (diff > 0) correct++;
  }
  return {
    accuracy: correct / task.examples.length,
    logitDiff: sum / task.examples.length,
    n: task.examples.length,
  };
}

test('scoreTask and `sfc eval-task --json` match per-example logits', async () => {
  const weights = randomModelWeights();
  const model = new GptNeoX(config, weights);
  const file = path.join(tmp, 'mixed.jsonl');
  // examples of different lengths, so batches carry padding
  const text = ['simple', 'nounpp', 'rc', 'within_rc']
    .flatMap((t) =>
      fs
        .readFileSync(new URL(`../../data/${t}_test.jsonl`, import.meta.url), 'utf8')
        .trim()
        .split('\n')
        .slice(0, 15),
    )
    .join('\n');
  fs.writeFileSync(file, text);
  const expected = bruteForce(model, file);
  assert.equal(expected.n, 60);
  assert.ok(
    expected.accuracy > 0.1 && expected.accuracy < 0.9,
    'random model should be neither always right nor wrong',
  );

  const score = scoreTask(model, loadTask(file, tokenizer).examples, { batchSize: 7 });
  assert.equal(score.n, expected.n);
  assert.equal(score.accuracy, expected.accuracy);
  assert.ok(Math.abs(score.logitDiff - expected.logitDiff) < 1e-4);
  assert.equal(
    Object.values(score.byCase).reduce((s, c) => s + c.n, 0),
    60,
  );

  const modelDir = path.join(tmp, 'model');
  const tokenizerFile = path.join(tmp, 'tokenizer.json');
  fs.writeFileSync(tokenizerFile, JSON.stringify(built.json));
  saveModel(modelDir, config, weights, { tokenizer: tokenizerFile });
  const printed = await runCommand(register, [
    'eval-task',
    '--data',
    file,
    '--model',
    modelDir,
    '--json',
    '--batch-size',
    '4',
  ]);
  const result = JSON.parse(printed);
  assert.deepEqual(Object.keys(result), ['accuracy', 'logit_diff', 'n']);
  assert.equal(result.n, expected.n);
  assert.equal(result.accuracy, expected.accuracy);
  assert.ok(Math.abs(result.logit_diff - expected.logitDiff) < 1e-4);
});

test('scoreTask refuses data without patch answers and tokens outside the model', () => {
  const model = new GptNeoX(config, randomModelWeights());
  const single = parseTask(
    line({ clean_prefix: 'The guard', clean_answer: ' is' }),
    'x',
    tokenizer,
  );
  assert.throws(() => scoreTask(model, single.examples), /no examples with a patch_answer/);
  const small = new GptNeoX(
    { ...config, vocabSize: 100 },
    zeroWeights({ ...config, vocabSize: 100 }),
  );
  const pairs = parseTask(line(GOOD), 'x', tokenizer);
  assert.throws(
    () => scoreTask(small, pairs.examples),
    /line 1: token id \d+ is outside the model's vocabulary of 100/,
  );
});
