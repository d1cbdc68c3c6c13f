// evaluation.json: what the writer (evaluationJson) produces is what the one reader accepts, and
// a damaged file is refused with the file and field named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CircuitScore, Evaluation } from '../../src/evaluation/faithfulness.ts';
import { evaluationJson } from '../../src/evaluation/output.ts';
import { readEvaluationFile } from '../../src/evaluation/file.ts';

const score = (nodes: number, faithfulness: number): CircuitScore => ({
  nodes,
  featureNodes: nodes - 1,
  errorNodes: 1,
  fCircuit: 1.5,
  fComplement: NaN, // written as null
  faithfulness,
  completeness: Infinity, // written as null
});

function writeEvaluation(dir: string, extra: Record<string, unknown> = {}): string {
  const e: Evaluation = {
    fModel: 2,
    fEmpty: -1,
    circuit: score(12, 0.9),
    nodesBelowStartLayer: 3,
    allLayers: { fEmpty: -1.5, circuit: score(15, 0.8) },
    series: [
      {
        name: 'features',
        label: 'features',
        fEmpty: -1,
        skipped: [0.001],
        points: [{ threshold: 0.1, ...score(12, 0.9) }],
      },
    ],
  };
  const json = {
    ...evaluationJson(
      {
        circuit: 'out/circuit.json',
        neuronsCircuit: null,
        model: 'models/organism',
        saes: 'models/organism/saes',
        data: 'data/rc_test.jsonl',
        examples: 40,
        ablation: 'mean',
        startLayer: 0,
        errors: 'default',
        thresholds: [0.1],
        seed: 0,
      },
      e,
      0.1,
    ),
    ...extra,
  };
  const file = path.join(dir, 'evaluation.json');
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

test('evaluation.json as written reads back, NaN/Infinity as null, extra fields kept', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-evaluation-'));
  try {
    writeEvaluation(dir, { all_layers: { faithfulness: 0.7 } });
    const read = readEvaluationFile(dir);
    assert.equal(read.circuit_score.nodes, 12);
    assert.equal(read.circuit_score.faithfulness, 0.9);
    assert.equal(read.circuit_score.f_complement, null);
    assert.equal(read.circuit_score.completeness, null);
    assert.equal(read.circuit_score.nodes_below_start_layer, 3);
    assert.equal(read.circuit_score_all_layers?.nodes, 15);
    assert.equal(read.circuit_score_all_layers?.faithfulness, 0.8);
    assert.deepEqual(read.series[0].skipped_thresholds, [0.001]);
    assert.deepEqual((read as Record<string, unknown>).all_layers, { faithfulness: 0.7 });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a damaged evaluation.json names the file and the field', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-evaluation-'));
  try {
    const file = writeEvaluation(dir, { series: [{ name: 'features', points: 'none' }] });
    assert.throws(
      () => readEvaluationFile(file),
      new RegExp(
        `${file}: not an evaluation file \\(series\\.0\\.label: .*; series\\.0\\.points: Invalid input: expected array`,
      ),
    );
    fs.writeFileSync(file, '{"version": 2}');
    assert.throws(
      () => readEvaluationFile(file),
      /evaluation\.json: not an evaluation file \(version: /,
    );
    fs.writeFileSync(file, '{');
    assert.throws(() => readEvaluationFile(file), /evaluation\.json: not valid JSON/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
