// The whole `sfc discover` command on the Pythia-70M shape, loading included: a model folder
// (model.safetensors, config.json, a character tokenizer from test/fixtures/tokenizers) and 19
// random 32768-wide ReLU dictionaries saved as SAELens folders (ours: one folder per site) are
// written to a temporary folder, then `sfc discover` runs on 20 agreement-like pairs of 5 tokens
// in a child process, with the default dictionary residency and with --resident-dictionaries all.
// Reports the command's wall time against the node stage it prints (goal: whole command ≤ 1.5 ×
// its node stage) and where the difference goes.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHIA_70M, initialWeights } from './pythia-70m.ts';
import { randomSaes, scaleHeadToDeltaM } from './discover.ts';
import { GptNeoX } from '../src/model/gptneox.ts';
import { saveModel } from '../src/model/save.ts';
import { siteNames } from '../src/model/sites.ts';
import { Tokenizer } from '../src/model/tokenizer.ts';
import { loadTask } from '../src/data/tasks.ts';
import { saveDictionary } from '../src/sae/formats.ts';
import { Rng } from '../src/random.ts';

const PAIRS = 20;
const WIDTH = 32768;
const LETTERS = 'abcdefghijklmnopqrstuvwxy';

const root = fileURLToPath(new URL('..', import.meta.url));
const tokenizerFile = path.join(
  root,
  'test',
  'fixtures',
  'tokenizers',
  'chars-no-bos.tokenizer.json',
);

/** Five-character prompts (one token per character) differing at position 1, shared answers. */
function writeTask(file: string): void {
  const rng = new Rng(3);
  const lines = Array.from({ length: PAIRS }, () => {
    const chars = Array.from({ length: 5 }, () => LETTERS[rng.int(LETTERS.length)]);
    const at1 = (c: string) => [chars[0], c, ...chars.slice(2)].join('');
    const [clean, patch] = [at1('z'), at1('q')];
    return JSON.stringify({
      clean_prefix: clean,
      patch_prefix: patch,
      clean_answer: 's',
      patch_answer: 'e',
    });
  });
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

export function runDiscoverCommandBench(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bench-discover-command-'));
  try {
    const t0 = performance.now();
    const [modelDir, saeDir, data, out] = ['model', 'saes', 'task.jsonl', 'out'].map((p) =>
      path.join(dir, p),
    );
    writeTask(data);
    const { examples } = loadTask(data, Tokenizer.fromFile(tokenizerFile));
    const c = PYTHIA_70M;
    const weights = initialWeights(c);
    scaleHeadToDeltaM(c, weights, examples);
    saveModel(modelDir, c, weights, { tokenizer: tokenizerFile });
    const model = new GptNeoX(c, weights);
    const saes = randomSaes(model, examples, WIDTH, siteNames(c.numLayers));
    let saeBytes = 0;
    for (const sae of saes.values()) {
      const folder = saveDictionary(saeDir, sae);
      for (const f of fs.readdirSync(folder)) saeBytes += fs.statSync(path.join(folder, f)).size;
    }
    const modelBytes = fs.statSync(path.join(modelDir, 'model.safetensors')).size;
    const setup = (performance.now() - t0) / 1000;
    console.log(
      `discover-command: Pythia-70M shape, ${saes.size} random ${WIDTH}-wide ReLU SAEs as SAELens folders ` +
        `(${(saeBytes / 2 ** 30).toFixed(2)} GiB; model ${(modelBytes / 2 ** 20).toFixed(0)} MiB), ${PAIRS} pairs of 5 tokens, IG 10 steps (setup ${setup.toFixed(0)} s)`,
    );
    const line = (label: string, value: string) => console.log(`${label.padEnd(34)} ${value}`);
    // The default (the fewest dictionaries resident, each read once per stage) and every
    // dictionary resident (each read once).
    for (const resident of [null, 'all']) {
      const args = ['--import', 'tsx', path.join(root, 'src', 'cli', 'main.ts'), 'discover'];
      args.push('--model', modelDir, '--saes', saeDir, '--data', data, '--out', out);
      if (resident) args.push('--resident-dictionaries', resident);
      const start = performance.now();
      const run = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
      const wall = (performance.now() - start) / 1000;
      if (run.status !== 0)
        throw new Error(`sfc discover failed (exit ${run.status}):\n${run.stderr}\n${run.stdout}`);
      const times = /time: nodes ([\d.]+) s, edges ([\d.]+) s/.exec(run.stdout);
      if (!times) throw new Error(`sfc discover printed no stage times:\n${run.stdout}`);
      const [nodes, edges] = [Number(times[1]), Number(times[2])];
      const held = /dictionaries in memory: (.*)/.exec(run.stderr)?.[1] ?? '?';
      line(
        `sfc discover, ${resident ? `--resident-dictionaries ${resident}` : 'default residency'}`,
        `${wall.toFixed(1)} s = ${(wall / nodes).toFixed(2)} × its node stage (goal ≤ 1.5); ` +
          `nodes ${nodes.toFixed(1)} s, edges ${edges.toFixed(1)} s, ` +
          `${(wall - nodes - edges).toFixed(1)} s outside the stages (start-up, loading the model and ` +
          `${(saeBytes / 2 ** 30).toFixed(2)} GiB of dictionaries, writing); dictionaries ${held}`,
      );
    }
    line(
      '1-minute load average at the end',
      `${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) runDiscoverCommandBench();
