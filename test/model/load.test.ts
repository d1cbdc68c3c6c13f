import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelDir, loadModel } from '../../src/model/load.ts';
import { saveModel } from '../../src/model/save.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import type { GptNeoXConfig } from '../../src/model/config.ts';
import { parameterLayout, zeroWeights, type GptNeoXWeights } from '../../src/model/weights.ts';
import { tinyConfig } from '../helpers/random-model.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-load-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const tmpDir = (name: string) => path.join(tmp, `${dirCount++}-${name}`);
const fixtures = fileURLToPath(new URL('../fixtures/load/', import.meta.url));
const sharedTokenizer = fileURLToPath(
  new URL('../../../shared/data/gpt-neox-20b-tokenizer.json', import.meta.url),
);

const tiny = tinyConfig({ vocabSize: 11, hiddenSize: 8, intermediateSize: 16, rotaryPct: 0.25 });

/** Deterministic weights with values across several magnitudes (so F16 rounding is exercised). */
function randomWeights(c: GptNeoXConfig, seed = 1): GptNeoXWeights {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const w = zeroWeights(c);
  for (const p of parameterLayout(c)) {
    const a = p.get(w);
    for (let i = 0; i < a.length; i++) a[i] = (rand() - 0.5) * 2 ** Math.floor(rand() * 12 - 8);
  }
  return w;
}

function assertWeightsEqual(actual: GptNeoXWeights, expected: GptNeoXWeights, c: GptNeoXConfig) {
  for (const p of parameterLayout(c)) assert.deepEqual(p.get(actual), p.get(expected), p.name);
}

function savedTiny(name: string, c = tiny): { dir: string; weights: GptNeoXWeights } {
  const dir = tmpDir(name);
  const weights = randomWeights(c);
  saveModel(dir, c, weights);
  return { dir, weights };
}

test('saveModel then loadModel gives back the same F32 model', () => {
  const { dir, weights } = savedTiny('f32');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  const loaded = loadModel(dir);
  assert.equal(loaded.dir, dir);
  assert.deepEqual(loaded.config, tiny);
  assertWeightsEqual(loaded.weights, weights, tiny);
  assert.equal(loaded.tokenizer, undefined);
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(config.model_type, 'gpt_neox');
  assert.equal(config.torch_dtype, 'float32');
});

test('F16 save loads back within half precision', () => {
  const dir = tmpDir('f16');
  const weights = randomWeights(tiny);
  saveModel(dir, tiny, weights, { dtype: 'F16' });
  const loaded = loadModel(dir);
  assert.equal(
    JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).torch_dtype,
    'float16',
  );
  for (const p of parameterLayout(tiny)) {
    const got = p.get(loaded.weights);
    const want = p.get(weights);
    for (let i = 0; i < want.length; i++) {
      // Half has 11 significant bits: relative error <= 2^-11, absolute 2^-25 for subnormals.
      const tol = Math.max(Math.abs(want[i]) * 2 ** -11, 2 ** -25);
      assert.ok(Math.abs(got[i] - want[i]) <= tol, `${p.name}[${i}]: ${got[i]} vs ${want[i]}`);
    }
  }
});

test('loads a Pythia-shaped BF16 checkpoint written by Python, ignoring its buffers', () => {
  const dir = path.join(fixtures, 'tiny-pythia-bf16');
  const expected = JSON.parse(
    fs.readFileSync(path.join(fixtures, 'tiny-pythia-bf16.expected.json'), 'utf8'),
  ) as Record<string, number[]>;
  const { config, weights } = loadModel(dir);
  assert.equal(config.vocabSize, 13);
  assert.equal(config.numLayers, 2);
  const layout = parameterLayout(config);
  assert.deepEqual(layout.map((p) => p.name).sort(), Object.keys(expected).sort());
  for (const p of layout) assert.deepEqual([...p.get(weights)], expected[p.name], p.name);
});

test('loads a sharded checkpoint through model.safetensors.index.json', () => {
  const dir = tmpDir('sharded');
  fs.mkdirSync(dir);
  const weights = randomWeights(tiny, 7);
  const layout = parameterLayout(tiny);
  const half = Math.floor(layout.length / 2);
  const shards = [layout.slice(0, half), layout.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((params, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const extra =
      i === 0
        ? [
            // Buffers and an unrelated head: present in the index, ignored on loading.
            {
              name: 'gpt_neox.layers.0.attention.masked_bias',
              shape: [],
              data: Float32Array.of(-1e9),
            },
            {
              name: 'gpt_neox.layers.0.attention.rotary_emb.inv_freq',
              shape: [1],
              data: Float32Array.of(1),
            },
            { name: 'value_head.weight', shape: [2, 8], data: new Float32Array(16) },
          ]
        : [];
    const tensors = [
      ...params.map((p) => ({ name: p.name, shape: p.shape, data: p.get(weights) })),
      ...extra,
    ];
    writeSafetensors(path.join(dir, file), tensors, { format: 'pt' });
    for (const t of tensors) weightMap[t.name] = file;
  });
  fs.writeFileSync(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJsonOf(tiny)));
  assertWeightsEqual(loadModel(dir).weights, weights, tiny);

  // A shard the index names but that is not there.
  weightMap['embed_out.weight'] = 'model-00003-of-00002.safetensors';
  fs.writeFileSync(
    path.join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ weight_map: weightMap }),
  );
  assert.throws(
    () => loadModel(dir),
    /model\.safetensors\.index\.json: lists shard model-00003-of-00002\.safetensors, but .* does not exist/,
  );
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weights: {} }));
  assert.throws(() => loadModel(dir), /model\.safetensors\.index\.json: no "weight_map" object/);
});

test('hostile index: shard names must stay inside the model folder', () => {
  const outside = tmpDir('outside');
  const { dir } = savedTiny('victim-source');
  fs.mkdirSync(outside);
  // A valid safetensors file outside the folder, which an index must not be able to reach.
  fs.copyFileSync(path.join(dir, 'model.safetensors'), path.join(outside, 'secret.safetensors'));
  const model = tmpDir('hostile-index');
  fs.mkdirSync(model);
  fs.copyFileSync(path.join(dir, 'config.json'), path.join(model, 'config.json'));
  fs.symlinkSync(path.join(outside, 'secret.safetensors'), path.join(model, 'link.safetensors'));
  const index = path.join(model, 'model.safetensors.index.json');
  const withShard = (shard: string) =>
    fs.writeFileSync(index, JSON.stringify({ weight_map: { 'embed_out.weight': shard } }));
  const cases: [string, RegExp][] = [
    [path.join(outside, 'secret.safetensors'), /is not a relative file name/],
    [`../${path.basename(outside)}/secret.safetensors`, /is not a relative file name/],
    ['sub/../../x.safetensors', /is not a relative file name/],
    ['..\\x.safetensors', /is not a relative file name/],
    ['a\0b', /is not a relative file name/],
    ['', /is not a relative file name/],
    ['link.safetensors', /resolves to .*secret\.safetensors, outside the folder \(a symlink\?\)/],
    ['.', /resolves to .*, outside the folder/],
  ];
  for (const [shard, pattern] of cases) {
    withShard(shard);
    assert.throws(
      () => loadModel(model),
      (e: Error) =>
        e.constructor === Error &&
        e.message.startsWith(`${index}: shard ${JSON.stringify(shard)}`) &&
        pattern.test(e.message),
      JSON.stringify(shard),
    );
  }
  fs.writeFileSync(index, JSON.stringify({ weight_map: { 'embed_out.weight': 3 } }));
  assert.throws(
    () => loadModel(model),
    /model\.safetensors\.index\.json: no "weight_map" object .*weight_map\.embed_out\.weight: /,
  );
});

function configJsonOf(c: GptNeoXConfig) {
  const dir = tmpDir('cfg');
  saveModel(dir, c, zeroWeights(c));
  return JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
}

test('attention_bias false: bias tensors are absent on disk and zero when loaded', () => {
  const noBias = { ...tiny, attentionBias: false };
  const dir = tmpDir('nobias');
  const weights = randomWeights(noBias);
  for (const layer of weights.layers) {
    layer.qkvBias.fill(0);
    layer.denseBias.fill(0);
  }
  saveModel(dir, noBias, weights);
  const loaded = loadModel(dir);
  assert.equal(loaded.config.attentionBias, false);
  assertWeightsEqual(loaded.weights, weights, noBias);
  const header = fs.readFileSync(path.join(dir, 'model.safetensors')).toString('latin1', 0, 4000);
  assert.ok(!header.includes('attention.dense.bias'));
  assert.ok(header.includes('mlp.dense_4h_to_h.bias'));
  // Nonzero biases would silently vanish, so saving refuses.
  weights.layers[1].denseBias[3] = 0.5;
  assert.throws(
    () => saveModel(tmpDir('nobias2'), noBias, weights),
    /attention_bias false but gpt_neox\.layers\.1\.attention\.dense\.bias is nonzero/,
  );
});

test('error: missing tensor names it and the file', () => {
  const dir = tmpDir('missing-tensor');
  fs.mkdirSync(dir);
  const weights = randomWeights(tiny);
  const missing = 'gpt_neox.layers.1.mlp.dense_h_to_4h.weight';
  writeSafetensors(
    path.join(dir, 'model.safetensors'),
    parameterLayout(tiny)
      .filter((p) => p.name !== missing)
      .map((p) => ({ name: p.name, shape: p.shape, data: p.get(weights) })),
  );
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJsonOf(tiny)));
  assert.throws(
    () => loadModel(dir),
    (e: Error) => {
      assert.match(
        e.message,
        /model\.safetensors: missing tensor gpt_neox\.layers\.1\.mlp\.dense_h_to_4h\.weight \(shape \[16,8\]\)/,
      );
      assert.match(e.message, /gpt_neox\.layers\.0\.mlp\.dense_h_to_4h\.weight/); // a similar name it does have
      return true;
    },
  );
});

test('error: a tensor of the wrong shape names it, got and expected', () => {
  const { dir } = savedTiny('wrong-shape');
  // Same weights file, config claims a wider MLP.
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  config.intermediate_size = 32;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  assert.throws(
    () => loadModel(dir),
    /model\.safetensors: tensor gpt_neox\.layers\.0\.mlp\.dense_h_to_4h\.weight has shape \[16,8\], expected \[32,8\] \(from .*config\.json\)/,
  );
});

test('error: only pytorch_model.bin says how to convert', () => {
  const dir = tmpDir('bin-only');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJsonOf(tiny)));
  fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'PK\x03\x04');
  assert.throws(
    () => loadModel(dir),
    (e: Error) => {
      assert.match(e.message, /has only PyTorch pickle weights \(pytorch_model\.bin\)/);
      assert.match(e.message, /torch\.load\(".*pytorch_model\.bin", map_location="cpu"\)/);
      assert.match(e.message, /save_file\(.*model\.safetensors/);
      assert.match(
        e.message,
        /from_pretrained\(".*bin-only"\)\.save_pretrained\(".*bin-only", safe_serialization=True\)/,
      );
      return true;
    },
  );
});

test('error: no weights at all lists what the folder has', () => {
  const dir = tmpDir('no-weights');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(configJsonOf(tiny)));
  assert.throws(
    () => loadModel(dir),
    /no model\.safetensors or model\.safetensors\.index\.json \(found: config\.json\)/,
  );
});

test('error: corrupt safetensors header names the file', () => {
  const { dir } = savedTiny('corrupt');
  const file = path.join(dir, 'model.safetensors');
  const raw = fs.readFileSync(file);
  raw.write('#', 8); // first header byte: '{' -> '#'
  fs.writeFileSync(file, raw);
  assert.throws(() => loadModel(dir), new RegExp(`${file}: header is not valid JSON`));
  // Truncated download: the last tensor runs past the end.
  fs.writeFileSync(
    file,
    fs.readFileSync(path.join(savedTiny('trunc').dir, 'model.safetensors')).subarray(0, -10),
  );
  assert.throws(
    () => loadModel(dir),
    /model\.safetensors: tensor embed_out\.weight: data_offsets .* run past the end/,
  );
});

test('error: missing folder, missing or bad config.json', () => {
  const nowhere = path.join(tmp, 'does-not-exist');
  assert.throws(() => loadModel(nowhere), new RegExp(`${nowhere}: no such model folder`));
  const { dir } = savedTiny('config');
  assert.throws(() => loadModel(path.join(dir, 'config.json')), /config\.json: not a folder/);
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, '{"vocab_size": 11,');
  assert.throws(() => loadModel(dir), new RegExp(`${configFile}: not valid JSON`));
  fs.writeFileSync(configFile, '{"vocab_size": 11}');
  assert.throws(
    () => loadModel(dir),
    new RegExp(`${configFile}: not a GPT-NeoX config \\(hidden_size`),
  );
  fs.rmSync(configFile);
  assert.throws(() => loadModel(dir), new RegExp(`${configFile}: missing`));
});

test('tokenizer: loaded when asked and present; its ids must fit the vocabulary', () => {
  const big = { ...tiny, vocabSize: 50304, hiddenSize: 4, intermediateSize: 8, numLayers: 1 };
  const dir = tmpDir('with-tokenizer');
  saveModel(dir, big, zeroWeights(big), { tokenizer: sharedTokenizer });
  assert.equal(loadModel(dir).tokenizer, undefined);
  const { tokenizer } = loadModel(dir, { tokenizer: true });
  assert.ok(tokenizer);
  assert.deepEqual(tokenizer.encode(' are'), [403]);
  // Folder without tokenizer.json: no tokenizer, no error.
  const { dir: plain } = savedTiny('no-tokenizer');
  assert.equal(loadModel(plain, { tokenizer: true }).tokenizer, undefined);
  fs.copyFileSync(sharedTokenizer, path.join(plain, 'tokenizer.json'));
  assert.throws(
    () => loadModel(plain, { tokenizer: true }),
    /tokenizer\.json: has 50277 token ids but .*config\.json says vocab_size 11/,
  );
});

test('defaultModelDir is <repo>/models/organism', () => {
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  assert.equal(defaultModelDir(), path.join(repo, 'models', 'organism'));
  assert.ok(path.isAbsolute(defaultModelDir()));
  if (!fs.existsSync(defaultModelDir()))
    assert.throws(
      () => loadModel(path.relative(process.cwd(), defaultModelDir())),
      /the shipped model is missing; pass --model <folder>/,
    );
});
