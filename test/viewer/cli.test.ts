// `sfc dashboards` then `sfc report` end to end on a tiny random model saved to disk with its own
// tokenizer and random SAEs, through the commander commands.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { register } from '../../src/cli/commands/report.ts';
import { writeCircuit, type Circuit } from '../../src/circuit/circuit.ts';
import { readDashboards } from '../../src/dashboards/file.ts';
import { saveModel } from '../../src/model/save.ts';
import { siteNames } from '../../src/model/sites.ts';
import { buildTokenizer } from '../../src/organism/tokenizer-builder.ts';
import { saveDictionary } from '../../src/sae/formats.ts';
import { randomWeights, tinyConfig } from '../helpers/random-model.ts';
import { randomSaes } from '../helpers/random-saes.ts';
import { runCommand } from '../helpers/run-command.ts';

function sfc(args: string[]): Promise<string> {
  return runCommand(register, args);
}

test('sfc dashboards and sfc report on a saved tiny model', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-cli-'));
  try {
    const words = [
      'The',
      ' teacher',
      ' teachers',
      ' that',
      ' the',
      ' guards',
      ' like',
      ' likes',
      ' .',
    ];
    const tok = buildTokenizer(words);
    fs.writeFileSync(path.join(root, 'tokenizer.json'), JSON.stringify(tok.json));
    const config = tinyConfig({ vocabSize: tok.vocabSize });
    const modelDir = path.join(root, 'model');
    saveModel(modelDir, config, randomWeights(config, 5), {
      tokenizer: path.join(root, 'tokenizer.json'),
    });
    for (const sae of randomSaes(config, 8, 6).values())
      saveDictionary(path.join(modelDir, 'saes'), sae);
    const corpus = path.join(root, 'corpus.txt');
    // 7 + 7 + 6 tokens, one word each.
    fs.writeFileSync(
      corpus,
      'The teacher that the guards like .\nThe teachers that the guards like .\nThe guards like the teacher .\n',
    );
    const out = path.join(root, 'out');
    const circuit: Circuit = {
      version: 1,
      model: modelDir,
      saes: path.join(modelDir, 'saes'),
      data: 'tiny.jsonl',
      method: 'ig',
      steps: 10,
      aggregation: 'none',
      examples: 1,
      node_threshold: 0.1,
      edge_threshold: 0.01,
      sites: siteNames(2),
      tokens: ['The', ' teacher', ' that'],
      metric: { clean: 0, patch: 1 },
      nodes: [
        {
          id: 'attn_0/5@1',
          site: 'attn_0',
          layer: 0,
          kind: 'feature',
          feature: 5,
          position: 1,
          effect: 0.3,
        },
        {
          id: 'resid_1/2@2',
          site: 'resid_1',
          layer: 1,
          kind: 'feature',
          feature: 2,
          position: 2,
          effect: -0.5,
        },
        {
          id: 'resid_1/ε@2',
          site: 'resid_1',
          layer: 1,
          kind: 'error',
          feature: null,
          position: 2,
          effect: 0.2,
        },
      ],
      edges: [
        { source: 'attn_0/5@1', target: 'resid_1/2@2', weight: 0.1 },
        { source: 'resid_1/2@2', target: 'y', weight: -0.5 },
      ],
    };
    writeCircuit(out, circuit);

    const said = await sfc([
      'dashboards',
      '--corpus',
      corpus,
      '--out',
      out,
      '--model',
      modelDir,
      '--top',
      '2',
    ]);
    assert.match(said, /dashboards of 2 features over 20 tokens/);
    const dash = readDashboards(out);
    assert.deepEqual(Object.keys(dash.features), ['attn_0/5', 'resid_1/2']);
    assert.equal(dash.tokens, 20);
    for (const f of Object.values(dash.features)) {
      assert.ok(f.contexts.length <= 2);
      for (const c of f.contexts)
        for (const id of c.ids) assert.ok(words.includes(dash.vocab[id]), dash.vocab[id]);
    }

    const wrote = await sfc(['report', out]);
    assert.equal(wrote, `wrote ${path.join(out, 'report.html')}`);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    assert.match(html, /"resid_1\/2":\{"site":"resid_1"/);

    await assert.rejects(
      sfc(['dashboards', '--corpus', corpus, '--out', root, '--model', modelDir]),
      /circuit\.json: no such circuit file; pass --features/,
    );
  } finally {
    fs.rmSync(root, { recursive: true });
  }
});
