// `sfc discover` + `sfc evaluate` on one organism task, in process, the way the two commands run
// with their defaults (src/cli/commands/discover.ts and evaluate.ts): IG circuit on the task's
// train file, neuron circuit found on the same data, 15 thresholds from 1e-4 to 1, mean
// ablation, start layer floor(layers / 3), errors 'default', seed 0, held-out `_test` data.

import fs from 'node:fs';
import path from 'node:path';
import { discover, toCircuit, type DiscoverOptions } from '../../../src/attribution/discover.ts';
import { writeCircuit, type Circuit } from '../../../src/circuit/circuit.ts';
import { taskBatches } from '../../../src/data/tasks.ts';
import { AblatedModel } from '../../../src/evaluation/ablation.ts';
import { forEvaluation } from '../../../src/evaluation/circuit-input.ts';
import { evaluate, logspace, type Evaluation } from '../../../src/evaluation/faithfulness.ts';
import { evaluationJson } from '../../../src/evaluation/output.ts';
import { curveSpec, renderSvg } from '../../../src/evaluation/plots.ts';
import { parseSite } from '../../../src/model/sites.ts';
import { NEURONS, openSaes } from '../../../src/sae/library.ts';
import { ORGANISM_DIR, organism, taskExamples } from './organism.ts';

export interface TaskEvaluationOptions {
  /** 'rc' for data/rc_train.jsonl and data/rc_test.jsonl. */
  task: string;
  /** Discovery examples (sfc discover --examples; default 100). */
  discoverExamples?: number;
  /** Evaluation examples (sfc evaluate --examples; default 100). */
  evaluateExamples?: number;
  nodeThreshold: number;
  nodesOnly: boolean;
  /** Folder that receives circuit.json, neurons/circuit.json, evaluation.json and the SVGs. */
  out: string;
  log?: (line: string) => void;
}

function findCircuit(
  data: string,
  examples: number,
  saes: string,
  options: DiscoverOptions,
): Circuit {
  const { model, tokenizer, library } = organism();
  const dicts =
    saes === NEURONS
      ? openSaes(NEURONS, model.config.numLayers, { modelWidth: model.config.hiddenSize })
      : library;
  const task = taskExamples(data, examples);
  const result = discover(model, (site) => dicts.get(site), task, {
    ...options,
    sites: options.sites ?? library.sites(),
  });
  return toCircuit(
    result,
    {
      model: ORGANISM_DIR,
      saes,
      data,
      tokens: task[0].clean.map((id) => tokenizer.tokenString(id)),
    },
    options,
  );
}

export async function evaluateTask(o: TaskEvaluationOptions): Promise<Evaluation> {
  const log = o.log ?? (() => {});
  const { model, library } = organism();
  const train = path.join('data', `${o.task}_train.jsonl`);
  const test = path.join('data', `${o.task}_test.jsonl`);
  const thresholds = logspace(-4, 0, 15);
  const base: DiscoverOptions = { method: 'ig', steps: 10, aggregation: 'none', batchSize: 10 };
  log(`${o.task}: discover`);
  const circuit = findCircuit(train, o.discoverExamples ?? 100, path.join(ORGANISM_DIR, 'saes'), {
    ...base,
    nodeThreshold: o.nodeThreshold,
    edgeThreshold: 0.01,
    nodesOnly: o.nodesOnly,
  });
  const circuitFile = writeCircuit(o.out, circuit);
  log(`${o.task}: neuron circuit`);
  const neurons = findCircuit(train, circuit.examples, NEURONS, {
    ...base,
    nodeThreshold: Math.min(...thresholds),
    nodesOnly: true,
  });
  const neuronsFile = writeCircuit(path.join(o.out, 'neurons'), neurons);

  const T = circuit.tokens.length;
  const examples = taskExamples(test)
    .filter((e) => e.clean.length === T)
    .slice(0, o.evaluateExamples ?? 100);
  const batches = taskBatches(examples, 25);
  const numLayers = model.config.numLayers;
  const startLayer = Math.floor(numLayers / 3);
  const sites = library.sites().filter((s) => parseSite(s, numLayers).layer >= startLayer);
  const identity = openSaes(NEURONS, numLayers, { modelWidth: model.config.hiddenSize });
  const ablated = (get: (s: string) => ReturnType<typeof library.get>) =>
    new AblatedModel(model, new Map(sites.map((s) => [s, get(s)])), batches, { ablation: 'mean' });
  log(`${o.task}: evaluate`);
  const evaluation = evaluate(
    {
      model: ablated((s) => library.get(s)),
      circuit: forEvaluation(circuit, circuitFile),
      neurons: {
        model: ablated((s) => identity.get(s)),
        circuit: forEvaluation(neurons, neuronsFile),
      },
    },
    { thresholds, errors: 'default', seed: 0 },
  );
  const json = evaluationJson(
    {
      circuit: circuitFile,
      neuronsCircuit: neuronsFile,
      model: ORGANISM_DIR,
      saes: path.join(ORGANISM_DIR, 'saes'),
      data: test,
      examples: examples.length,
      ablation: 'mean',
      startLayer,
      errors: 'default',
      thresholds,
      seed: 0,
    },
    evaluation,
    circuit.node_threshold,
  );
  fs.writeFileSync(path.join(o.out, 'evaluation.json'), JSON.stringify(json, null, 2) + '\n');
  const subtitle = `mean ablation, layers >= ${startLayer}, ${examples.length} examples of ${path.basename(test)}`;
  for (const kind of ['faithfulness', 'completeness'] as const)
    fs.writeFileSync(
      path.join(o.out, `${kind}.svg`),
      await renderSvg(curveSpec(evaluation, kind, subtitle)),
    );
  return evaluation;
}
