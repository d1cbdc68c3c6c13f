// The metric m whose changes circuits explain: a function of one example's last-token logits,
// or (with `readout`) of one residual site's activation at every position, e.g. a probe.
// V vocabulary, V' = the metric's own vocabulary when it names one (only those logits are computed),
// T tokens of the example's batch (padded), d model width.

import type { TaskExample } from '../data/tasks.ts';

export interface Metric {
  /**
   * Vocabulary ids whose logits the metric reads. When given, the model's head computes only these
   * columns (a [V', d] slice of embed_out) and `evaluate` sees logits indexed like this list; when
   * absent it sees all V logits.
   */
  readonly vocab?: Int32Array;
  /**
   * A residual site ('embed' or 'resid_L') that m reads instead of the logits. Then only the
   * layers up to it run, only the sites up to it have effects, and `evaluate` sees the site's
   * activation for the example's rows [T*d] (positions past the example's length are padding).
   */
  readonly readout?: string;
  /**
   * m for example `example` (its index in the task) from its last-token logits [V' or V] (or the
   * readout's activation [T*d]); writes ∂m/∂(those values) into `dValues` (same length,
   * zero-filled by the caller) when given.
   */
  evaluate(values: Float32Array, example: number, dValues?: Float32Array): number;
}

/**
 * The paper's metric, used by discovery and evaluation alike (one sign convention, so the metric
 * in circuit.json and F(M), F(C), F(∅) in evaluation.json read the same way):
 *   m = logit[patch_answer] - logit[clean_answer] at the last prefix token,
 * and for single-input data (no patch prefix, or no patch answer) m = -logit[clean_answer].
 * A circuit explains how m rises when the clean input is moved toward the patch input (or toward
 * zero); on a model that prefers the clean answer m is negative.
 *
 * Both forms in one data set would average logit differences with raw logits, a number that
 * means neither, so mixed data is refused, naming the lines of the minority.
 */
export function logitDiffMetric(examples: TaskExample[]): Metric {
  const hasPatchAnswer = (e: TaskExample) => e.patch !== null && e.patchAnswerId !== null;
  const withDiff = examples.filter(hasPatchAnswer);
  if (withDiff.length > 0 && withDiff.length < examples.length) {
    const without = examples.filter((e) => !hasPatchAnswer(e));
    const few = withDiff.length <= without.length ? withDiff : without;
    const lines = few.slice(0, 5).map((e) => e.line);
    const more = few.length > lines.length ? `, ... (${few.length} in all)` : '';
    throw new Error(
      `metric: ${withDiff.length} of ${examples.length} examples have a patch_prefix and a patch_answer ` +
        `(m = logit[patch] - logit[clean]) and ${without.length} do not (m = -logit[clean]); the two ` +
        `cannot be averaged. Give every example a patch_prefix and patch_answer, or none ` +
        `(${few === withDiff ? 'with' : 'without'} them: line${few.length > 1 ? 's' : ''} ${lines.join(', ')}${more})`,
    );
  }
  const ids = new Set<number>();
  for (const e of examples) {
    ids.add(e.cleanAnswerId);
    if (hasPatchAnswer(e)) ids.add(e.patchAnswerId!);
  }
  const vocab = Int32Array.from([...ids].sort((a, b) => a - b));
  const column = new Map<number, number>();
  vocab.forEach((id, i) => column.set(id, i));
  const cleanColumn = examples.map((e) => column.get(e.cleanAnswerId)!);
  const patchColumn = examples.map((e) => (hasPatchAnswer(e) ? column.get(e.patchAnswerId!)! : -1));
  return {
    vocab,
    evaluate(logits, example, dLogits) {
      const c = cleanColumn[example];
      const p = patchColumn[example];
      if (c === undefined) throw new Error(`metric: no example ${example}`);
      if (dLogits) {
        dLogits[c] -= 1;
        if (p >= 0) dLogits[p] += 1;
      }
      return (p >= 0 ? logits[p] : 0) - logits[c];
    },
  };
}

/**
 * The mean of `metric` over examples whose full last-token logits are given per batch
 * ([B*V] each, batches in example order): how evaluation reads a metric that names its
 * vocabulary. V is the full vocabulary.
 */
export function meanOverLogits(
  metric: Metric,
  logits: Float32Array[],
  batchSizes: number[],
  V: number,
): number {
  const { sum, examples } = sumOverLogits(metric, logits, batchSizes, V, 0);
  return sum / examples;
}

/**
 * The sum of `metric` over the examples of `logits` (as meanOverLogits), in example order, and
 * their count; the first is example `firstExample` of the task (a shard's batches start later).
 */
export function sumOverLogits(
  metric: Metric,
  logits: Float32Array[],
  batchSizes: number[],
  V: number,
  firstExample: number,
): { sum: number; examples: number } {
  if (metric.readout)
    throw new Error(
      `metric: reads site ${metric.readout}, not the logits; it cannot be averaged over logits`,
    );
  const vocab = metric.vocab;
  const values = new Float32Array(vocab ? vocab.length : V);
  let sum = 0;
  let examples = 0;
  batchSizes.forEach((B, i) => {
    const l = logits[i];
    for (let b = 0; b < B; b++) {
      const row = l.subarray(b * V, (b + 1) * V);
      if (vocab) for (let j = 0; j < vocab.length; j++) values[j] = row[vocab[j]];
      sum += metric.evaluate(vocab ? values : row, firstExample + examples++);
    }
  });
  return { sum, examples };
}
