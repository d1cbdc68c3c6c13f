import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelDir, loadModel } from '../../src/model/load.ts';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { scoreTask } from '../../src/data/tasks.ts';
import { loadAgreementTasks } from '../../src/organism/train-model.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = defaultModelDir();
const shipped = fs.existsSync(path.join(dir, 'model.safetensors'));

test(
  'the shipped organism gets >= 99% agreement accuracy on every template test file',
  { skip: shipped ? false : `${dir} has no model.safetensors yet (run npm run organism)` },
  () => {
    const { config, weights, tokenizer } = loadModel(dir, { tokenizer: true });
    assert.ok(tokenizer, `${dir}: no tokenizer.json`);
    const model = new GptNeoX(config, weights);
    for (const task of loadAgreementTasks(path.join(repo, 'data'), 'test', tokenizer)) {
      assert.equal(task.examples.length, 300, `${task.name}_test.jsonl: every example kept`);
      const { accuracy } = scoreTask(model, task.examples, { batchSize: 64 });
      assert.ok(accuracy >= 0.99, `${task.name}_test: accuracy ${accuracy} < 0.99`);
    }
  },
);
