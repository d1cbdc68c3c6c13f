// The SHIFT selection sweep: how the embedding SAE's k and the judge's --min-share are chosen, and
// how much SHIFT varies with the SAE's seed. Selection never sees balanced_test.
//
//   npx tsx scripts/shift-sweep.ts                       # every stage (hours on a busy 2-core box)
//   npx tsx scripts/shift-sweep.ts --stage saes --ks 2   # one stage, part of the grid
//
// Stages, each skipping what an earlier run already wrote into --work (default out/shift-sweep):
//   saes  retrain only the embedding's SAE (TopK, the stage's steps and lr, SITE_SAE_OVERRIDES)
//         for every k in --ks and seed in --seeds, with the organism trainer's own functions
//         (collectActivations, trainSiteSae) into <work>/saes/k<k>-seed<s>/embed/; the seed
//         plays SAE_SEEDS.training's role, so k = 2, seed 303 is the shipped SAE bit for bit.
//   val   per SAE (the other sites are the shipped ones): the SHIFT circuit once, the judge's
//         verdicts once, then for every share in --shares the SHIFT (+ retrain) rows scored on
//         data/bios/balanced_val.jsonl (a training-side split, seed 3003) -> <work>/val/*.json.
//   test  choose (k, share) by the mean over seeds of the validation worst-group accuracy (ties:
//         mean validation label accuracy, then the smaller k, then the smaller share); then, for
//         that setting only, the rows on balanced_test for every seed, with the original probe
//         and the oracle; writes <docs>/sweep.json and <docs>/sweep.md (default docs/shift).

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

// Small GEMMs run several times slower on two threads than on one on a busy 2-core machine.
process.env.SFC_THREADS ??= '1';

const { GptNeoX } = await import('../src/model/gptneox.ts');
const { loadModel } = await import('../src/model/load.ts');
const { buildOrganismTokenizer } = await import('../src/organism/tokenizer-builder.ts');
const { ORGANISM_MIX, organismEosId } = await import('../src/organism/train-model.ts');
const { collectActivations, trainSiteSae, SAE_SEEDS, SITE_SAE_OVERRIDES } =
  await import('../src/organism/train-saes.ts');

const { loadClassificationTask } = await import('../src/data/classification.ts');
const { openSaes } = await import('../src/sae/library.ts');
const { loadDictionary } = await import('../src/sae/formats.ts');
const { judgeGender } = await import('../src/organism/gender-judge.ts');
const shift = await import('../src/shift/shift.ts');
type Scores = import('../src/shift/shift.ts').Scores;
type Dictionary = import('../src/sae/dictionary.ts').Dictionary;

const SITE = 'embed';
const EXAMPLES = 100; // sfc shift's default --examples
const { values } = parseArgs({
  options: {
    stage: { type: 'string', default: 'all' },
    ks: { type: 'string', default: '2,4,8' },
    seeds: { type: 'string', default: '303,304,305,306,307' },
    shares: { type: 'string', default: '0.6,0.75' },
    model: { type: 'string', default: path.join('models', 'organism') },
    task: { type: 'string', default: path.join('data', 'bios') },
    work: { type: 'string', default: path.join('out', 'shift-sweep') },
    docs: { type: 'string', default: path.join('docs', 'shift') },
  },
});
const numbers = (name: string, v: string) =>
  v.split(',').map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n) || x.trim() === '')
      throw new Error(
        `--${name}: "${x}" is not a number (expected e.g. ${name === 'shares' ? '0.6,0.75' : '2,4'})`,
      );
    return n;
  });
const ks = numbers('ks', values.ks!);
const seeds = numbers('seeds', values.seeds!);
const shares = numbers('shares', values.shares!);
const stage = values.stage!;
if (!['saes', 'val', 'test', 'all'].includes(stage))
  throw new Error(`--stage: expected saes, val, test or all, got "${stage}"`);
const work = values.work!;
const saeDir = (k: number, seed: number) => path.join(work, 'saes', `k${k}-seed${seed}`);
const log = (line: string) =>
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

function stageSaes(): void {
  const todo = ks.flatMap((k) => seeds.map((seed) => ({ k, seed })));
  const missing = todo.filter(
    ({ k, seed }) => !fs.existsSync(path.join(saeDir(k, seed), 'train.json')),
  );
  if (missing.length === 0) return;
  const { config, weights } = loadModel(values.model!);
  const model = new GptNeoX(config, weights);
  const built = buildOrganismTokenizer();
  const shipped = SITE_SAE_OVERRIDES[SITE];
  const steps = shipped?.steps ?? 1500;
  const lr = shipped?.lr ?? 2e-3;
  const tokens = 400_000;
  const t0 = performance.now();
  const acts = collectActivations({
    model,
    tokenIds: built.ids,
    eosId: organismEosId(built.json),
    tokens,
    seed: SAE_SEEDS.activations,
    mix: ORGANISM_MIX,
    sites: [SITE],
  }).get(SITE)!;
  log(
    `collected ${tokens} ${SITE} activations in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  for (const { k, seed } of missing) {
    const trained = trainSiteSae(acts, config.hiddenSize, saeDir(k, seed), {
      site: SITE,
      width: 8 * config.hiddenSize,
      batchSize: 1024,
      tokens,
      config: { kind: 'topk', k, steps, lr },
      l1: 1,
      seed,
    });
    const m = trained.metrics;
    fs.writeFileSync(
      path.join(saeDir(k, seed), 'train.json'),
      JSON.stringify({ k, seed, steps, lr, ...trained }, null, 1) + '\n',
    );
    log(
      `sae k=${k} seed=${seed}: FVE ${m.fve.toFixed(4)}, L0 ${m.l0.toFixed(2)} (${trained.seconds.toFixed(0)} s)`,
    );
  }
}

/** What the val stage writes per SAE: the judged features and the validation scores per share. */
interface ValRecord {
  k: number;
  seed: number;
  candidates: number;
  /** Candidate id -> the judge's female share. */
  femaleShare: Record<string, number>;
  shares: {
    share: number;
    spurious: string[];
    /** The random control's features (seed 1, as `sfc shift`), scored only in the test stage. */
    random: string[];
    shift: Scores;
    shiftRetrain: Scores;
  }[];
  seconds: number;
}

const valFile = (k: number, seed: number) => path.join(work, 'val', `k${k}-seed${seed}.json`);
const lean = (share: number) => Math.max(share, 1 - share);
const refOf = (id: string) => {
  const [site, feature] = id.split('/');
  return { site, feature: Number(feature) };
};

function openOrganism() {
  const { config, weights, tokenizer } = loadModel(values.model!, { tokenizer: true });
  if (!tokenizer) throw new Error(`${values.model}: no tokenizer.json`);
  const model = new GptNeoX(config, weights);
  const library = openSaes(path.join(values.model!, 'saes'), config.numLayers, {
    modelWidth: config.hiddenSize,
  });
  const task = loadClassificationTask(values.task!, tokenizer, {
    maxLength: config.maxPositionEmbeddings,
  });
  // The shipped SAEs at every site but the embedding, which is the sweep's.
  const dictionaries = (k: number, seed: number): ((site: string) => Dictionary) => {
    const embed = loadDictionary(path.join(saeDir(k, seed), SITE), SITE);
    return (site) => (site === SITE ? embed : library.get(site));
  };
  return { model, tokenizer, task, dictionaries };
}

function stageVal(): void {
  const todo = ks
    .flatMap((k) => seeds.map((seed) => ({ k, seed })))
    .filter(({ k, seed }) => !fs.existsSync(valFile(k, seed)));
  if (todo.length === 0) return;
  const o = openOrganism();
  const setup = shift.prepareShift(o.model, o.task, { scoreOn: 'balanced_val' });
  fs.mkdirSync(path.join(work, 'val'), { recursive: true });
  for (const { k, seed } of todo) {
    if (fs.existsSync(valFile(k, seed))) continue; // another worker did it meanwhile
    const t0 = performance.now();
    const dictionaries = o.dictionaries(k, seed);
    const found = shift.shiftCircuit(setup, dictionaries, {
      examples: EXAMPLES,
      circuitInfo: { model: values.model!, saes: saeDir(k, seed), data: values.task! },
    });
    // The judge's verdicts do not depend on the share: one pass, then each share is a filter.
    const verdicts = judgeGender(o.model, dictionaries, found.features, {
      tokenizer: o.tokenizer,
      modelDir: values.model!,
    });
    const femaleShare = Object.fromEntries(
      found.features.map((f, i) => [f.id, verdicts[i].femaleShare]),
    );
    const record: ValRecord = {
      k,
      seed,
      candidates: found.features.length,
      femaleShare,
      shares: shares.map((share) => {
        const spurious = found.features.filter((_, i) => lean(verdicts[i].femaleShare) >= share);
        const scored = shift.scoreAblation(setup, dictionaries, spurious, true);
        return {
          share,
          spurious: spurious.map((f) => f.id),
          random: shift.randomFeatures(found, spurious, 1).map((f) => f.id),
          shift: scored.fixed,
          shiftRetrain: scored.retrained!,
        };
      }),
      seconds: (performance.now() - t0) / 1000,
    };
    fs.writeFileSync(valFile(k, seed), JSON.stringify(record, null, 1) + '\n');
    const line = record.shares
      .map(
        (r) =>
          `share ${r.share}: ${r.spurious.length} judged, worst ${pct(r.shiftRetrain.worstGroup)}`,
      )
      .join('; ');
    log(
      `val k=${k} seed=${seed}: ${record.candidates} candidates; ${line} (${record.seconds.toFixed(0)} s)`,
    );
  }
}

const pct = (v: number) => (100 * v).toFixed(1);

interface Spread {
  mean: number;
  min: number;
  max: number;
}
const spread = (xs: number[]): Spread => ({
  mean: xs.reduce((a, b) => a + b, 0) / xs.length,
  min: Math.min(...xs),
  max: Math.max(...xs),
});
const spreadScores = (rows: Scores[]) => ({
  label: spread(rows.map((r) => r.label)),
  gender: spread(rows.map((r) => r.gender)),
  worstGroup: spread(rows.map((r) => r.worstGroup)),
});

function stageTest(): void {
  const records = ks.flatMap((k) =>
    seeds.map((seed) => {
      const file = valFile(k, seed);
      if (!fs.existsSync(file))
        throw new Error(`${file}: missing; run --stage val for k=${k}, seed=${seed} first`);
      return JSON.parse(fs.readFileSync(file, 'utf8')) as ValRecord;
    }),
  );
  // The selection table: every (k, share), on the validation split only.
  const selection = ks.flatMap((k) =>
    shares.map((share) => {
      const runs = records
        .filter((r) => r.k === k)
        .map((r) => r.shares.find((x) => x.share === share)!);
      if (runs.some((r) => r === undefined))
        throw new Error(`val records for k=${k} lack share ${share}; rerun --stage val`);
      return {
        k,
        share,
        judged: spread(runs.map((r) => r.spurious.length)),
        shift: spreadScores(runs.map((r) => r.shift)),
        shiftRetrain: spreadScores(runs.map((r) => r.shiftRetrain)),
      };
    }),
  );
  const chosen = [...selection].sort(
    (a, b) =>
      b.shiftRetrain.worstGroup.mean - a.shiftRetrain.worstGroup.mean ||
      b.shiftRetrain.label.mean - a.shiftRetrain.label.mean ||
      a.k - b.k ||
      a.share - b.share,
  )[0];
  log(`chosen on validation: k=${chosen.k}, share ${chosen.share}`);

  // The test split, once, for the chosen setting only.
  const t0 = performance.now();
  const o = openOrganism();
  const setup = shift.prepareShift(o.model, o.task, { scoreOn: 'balanced_test' });
  const original = shift.scoreOriginal(setup);
  const oracle = shift.scoreOracle(setup, o.task.splits.balanced_train);
  const perSeed = seeds.map((seed) => {
    const record = records.find((r) => r.k === chosen.k && r.seed === seed)!;
    const run = record.shares.find((x) => x.share === chosen.share)!;
    const dictionaries = o.dictionaries(chosen.k, seed);
    const s = shift.scoreAblation(setup, dictionaries, run.spurious.map(refOf), true);
    const r = shift.scoreAblation(setup, dictionaries, run.random.map(refOf), true);
    log(`test k=${chosen.k} seed=${seed}: SHIFT + retrain worst ${pct(s.retrained!.worstGroup)}`);
    return {
      seed,
      judged: run.spurious.length,
      shift: s.fixed,
      shiftRetrain: s.retrained!,
      random: r.fixed,
      randomRetrain: r.retrained!,
    };
  });
  const test = {
    split: 'balanced_test',
    k: chosen.k,
    share: chosen.share,
    original,
    oracle,
    judged: spread(perSeed.map((r) => r.judged)),
    shift: spreadScores(perSeed.map((r) => r.shift)),
    shiftRetrain: spreadScores(perSeed.map((r) => r.shiftRetrain)),
    random: spreadScores(perSeed.map((r) => r.random)),
    randomRetrain: spreadScores(perSeed.map((r) => r.randomRetrain)),
    perSeed,
    seconds: (performance.now() - t0) / 1000,
  };
  const saeTraining = records.map((r) => {
    const t = JSON.parse(fs.readFileSync(path.join(saeDir(r.k, r.seed), 'train.json'), 'utf8'));
    return { k: r.k, seed: r.seed, fve: t.metrics.fve, l0: t.metrics.l0, seconds: t.seconds };
  });
  const out = {
    command: `npx tsx scripts/shift-sweep.ts --ks ${ks.join(',')} --seeds ${seeds.join(',')} --shares ${shares.join(',')}`,
    selectedOn: 'balanced_val',
    rule: 'highest mean validation worst-group accuracy of SHIFT + retrain over the seeds (ties: mean label accuracy, smaller k, smaller share)',
    ks,
    seeds,
    shares,
    saeTraining,
    validation: records.map((r) => ({
      k: r.k,
      seed: r.seed,
      candidates: r.candidates,
      seconds: r.seconds,
      shares: r.shares.map((x) => ({
        share: x.share,
        judged: x.spurious.length,
        shift: x.shift,
        shiftRetrain: x.shiftRetrain,
      })),
    })),
    selection,
    chosen: { k: chosen.k, share: chosen.share },
    test,
  };
  fs.mkdirSync(values.docs!, { recursive: true });
  fs.writeFileSync(path.join(values.docs!, 'sweep.json'), JSON.stringify(out, null, 1) + '\n');
  fs.writeFileSync(path.join(values.docs!, 'sweep.md'), sweepMarkdown(out));
  log(`wrote ${path.join(values.docs!, 'sweep.json')} and sweep.md`);
}

const triple = (s: ReturnType<typeof spreadScores>) =>
  `${pct(s.label.mean)} / ${pct(s.gender.mean)} / ${pct(s.worstGroup.mean)}`;
const range = (x: Spread) => `${pct(x.min)}–${pct(x.max)}`;
const cell = (x: Spread) => `${pct(x.mean)} (${range(x)})`;
const plain = (s: Scores) => `${pct(s.label)} | ${pct(s.gender)} | ${pct(s.worstGroup)}`;

function sweepMarkdown(out: {
  command: string;
  seeds: number[];
  selection: {
    k: number;
    share: number;
    judged: Spread;
    shiftRetrain: ReturnType<typeof spreadScores>;
  }[];
  chosen: { k: number; share: number };
  test: {
    k: number;
    share: number;
    original: Scores;
    oracle: Scores;
    judged: Spread;
    shift: ReturnType<typeof spreadScores>;
    shiftRetrain: ReturnType<typeof spreadScores>;
    random: ReturnType<typeof spreadScores>;
    randomRetrain: ReturnType<typeof spreadScores>;
  };
}): string {
  const n = out.seeds.length;
  const t = out.test;
  const row = (name: string, s: ReturnType<typeof spreadScores>) =>
    `| ${name} | ${cell(s.label)} | ${cell(s.gender)} | ${cell(s.worstGroup)} |`;
  return [
    '<!-- written by scripts/shift-sweep.ts; do not edit -->',
    '',
    `Selection on \`balanced_val\` (SHIFT + retrain, label / gender / worst group, %, mean over ${n} embedding-SAE seeds ${out.seeds.join(', ')}; worst group range in brackets):`,
    '',
    '|   k | share | judged (range) | SHIFT + retrain, mean | worst group range |',
    '| --: | ----: | -------------- | --------------------- | ----------------- |',
    ...out.selection.map(
      (r) =>
        `| ${r.k} | ${r.share} | ${r.judged.mean.toFixed(1)} (${r.judged.min}–${r.judged.max}) | ${triple(r.shiftRetrain)} | ${range(r.shiftRetrain.worstGroup)} |`,
    ),
    '',
    `Chosen: k = ${out.chosen.k}, share ${out.chosen.share}. The test split, once, for that setting (\`balanced_test\`, %, mean (min–max) over the ${n} seeds; ${t.judged.mean.toFixed(1)} features judged on average, ${t.judged.min}–${t.judged.max}):`,
    '',
    '| | label | gender | worst group |',
    '| --- | --: | --: | --: |',
    `| original probe | ${plain(t.original)} |`,
    row('SHIFT', t.shift),
    row('**SHIFT + retrain**', t.shiftRetrain),
    row('random features', t.random),
    row('random features + retrain', t.randomRetrain),
    `| oracle (trained on balanced data) | ${plain(t.oracle)} |`,
    '',
    `Command: \`${out.command}\``,
    '',
  ].join('\n');
}

if (stage === 'saes' || stage === 'all') stageSaes();
if (stage === 'val' || stage === 'all') stageVal();
if (stage === 'test' || stage === 'all') stageTest();
