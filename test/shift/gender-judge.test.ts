// The --auto judge on the shipped organism, with a hand-built embedding dictionary whose verdicts
// are known in advance: a feature that fires on " She" only (all of its activation follows a
// female cue), one that fires on " the" only (any gender's text), and one that never fires.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { defaultModelDir, loadModel } from '../../src/model/load.ts';
import { GptNeoX } from '../../src/model/gptneox.ts';
import { SparseAutoencoder } from '../../src/sae/dictionary.ts';
import { judgeGender } from '../../src/organism/gender-judge.ts';

const dir = defaultModelDir();
const shipped = fs.existsSync(path.join(dir, 'model.safetensors'));

/** Feature i fires (with size 1 at its own token) on token ids[i] alone; -1: never fires. */
function tokenDictionary(E: Float32Array, d: number, V: number, ids: number[]): SparseAutoencoder {
  const F = ids.length;
  const encoder = new Float32Array(F * d);
  const encoderBias = new Float32Array(F).fill(-1);
  ids.forEach((id, i) => {
    if (id < 0) return;
    const own = E.subarray(id * d, (id + 1) * d);
    const norm = Math.hypot(...own);
    // Threshold halfway between the token's own projection and the largest other one.
    let other = -Infinity;
    for (let j = 0; j < V; j++) {
      if (j === id) continue;
      let p = 0;
      for (let k = 0; k < d; k++) p += (own[k] / norm) * E[j * d + k];
      other = Math.max(other, p);
    }
    assert.ok(other < norm, `token ${id} is separable from the others`);
    const cut = (norm + other) / 2;
    for (let k = 0; k < d; k++) encoder[i * d + k] = own[k] / norm / (norm - cut);
    encoderBias[i] = -cut / (norm - cut);
  });
  return new SparseAutoencoder({
    site: 'embed',
    kind: 'relu',
    dIn: d,
    width: F,
    encoder,
    encoderBias,
    decoder: new Float32Array(F * d).fill(1 / Math.sqrt(d)),
    decoderBias: new Float32Array(d),
  });
}

test(
  'gender judge: a she-only feature is female, a the-only feature and a dead one are not',
  { skip: shipped ? false : `${dir} has no model.safetensors` },
  () => {
    const { config, weights, tokenizer } = loadModel(dir, { tokenizer: true });
    const model = new GptNeoX(config, weights);
    const [she] = tokenizer!.encode(' She');
    const [the] = tokenizer!.encode(' the');
    const d = config.hiddenSize;
    const dict = tokenDictionary(weights.embedIn, d, config.vocabSize, [she, the, -1]);
    const features = [0, 1, 2].map((feature) => ({ site: 'embed', feature }));
    const verdicts = judgeGender(model, () => dict, features, {
      tokenizer: tokenizer!,
      modelDir: dir,
      tokens: 4096,
    });
    assert.equal(verdicts[0].femaleShare, 1);
    assert.equal(verdicts[0].genderRelated, true);
    assert.ok(
      verdicts[1].femaleShare > 0.4 && verdicts[1].femaleShare < 0.6,
      `the: ${verdicts[1].femaleShare}`,
    );
    assert.equal(verdicts[1].genderRelated, false);
    assert.deepEqual(
      { share: verdicts[2].femaleShare, related: verdicts[2].genderRelated },
      { share: 0.5, related: false },
    );
    // A share of 1 still takes the she-only feature and nothing else.
    const strict = judgeGender(model, () => dict, features, {
      tokenizer: tokenizer!,
      modelDir: dir,
      tokens: 4096,
      minShare: 1,
    });
    assert.deepEqual(
      strict.map((v) => v.genderRelated),
      [true, false, false],
    );
    assert.throws(
      () =>
        judgeGender(model, () => dict, features, {
          tokenizer: tokenizer!,
          modelDir: dir,
          minShare: 0.5,
        }),
      /the share must be in \(0\.5, 1\], got 0\.5/,
    );
  },
);
