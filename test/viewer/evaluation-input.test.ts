// The report reads evaluation.json's all-layers score and the count of nodes below the start
// layer (written by src/evaluation/output.ts); files from before they existed read as null / 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readEvaluation } from '../../src/viewer/inputs.ts';
import { evaluationJson } from '../../src/evaluation/output.ts';
import type { CircuitScore, Evaluation } from '../../src/evaluation/faithfulness.ts';

const score = (nodes: number, faithfulness: number): CircuitScore => ({
  nodes,
  featureNodes: nodes - 1,
  errorNodes: 1,
  fCircuit: -7,
  fComplement: 0.1,
  faithfulness,
  completeness: 0.01,
});

test('evaluation.json: the all-layers score and the nodes below the start layer reach the report', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-evaluation-input-'));
  try {
    const e: Evaluation = {
      fModel: -7.5,
      fEmpty: 0.06,
      circuit: score(84, 0.965),
      nodesBelowStartLayer: 101,
      allLayers: { fEmpty: 0.07, circuit: score(185, 0.881) },
      series: [],
    };
    const settings = {
      ...{ circuit: 'c.json', neuronsCircuit: null, model: 'm', saes: 's', data: 'd' },
      ...{ examples: 100, ablation: 'mean', startLayer: 1, errors: 'default', thresholds: [] },
      seed: 0,
    };
    const file = path.join(dir, 'evaluation.json');
    const json = evaluationJson(settings, e, 0.1);
    fs.writeFileSync(file, JSON.stringify(json));
    const view = readEvaluation(file);
    assert.deepEqual(view.circuitScore, { nodes: 84, faithfulness: 0.965, completeness: 0.01 });
    assert.deepEqual(view.allLayers, { nodes: 185, faithfulness: 0.881, completeness: 0.01 });
    assert.equal(view.nodesBelowStart, 101);
    assert.equal(json.metric.empty_all_layers, 0.07);

    // An older file without them.
    const old = { ...json } as Record<string, unknown>;
    delete old.circuit_score_all_layers;
    old.circuit_score = { ...json.circuit_score, nodes_below_start_layer: undefined };
    fs.writeFileSync(file, JSON.stringify(old));
    const oldView = readEvaluation(file);
    assert.equal(oldView.allLayers, null);
    assert.equal(oldView.nodesBelowStart, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
