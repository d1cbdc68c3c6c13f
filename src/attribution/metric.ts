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
 * The paper's metric: m = logit[patch_answer] - logit[clean_answer] at the last prefix token; for
 * single-input examples (no patch prefix) m = -logit[clean_answer]. A circuit explains how m rises
 * when the clean input is moved toward the patch input (or toward zero).
 */
export function logitDiffMetric(examples: TaskExample[]): Metric {
  const ids = new Set<number>();
  for (const e of examples) {
    ids.add(e.cleanAnswerId);
    if (e.patch && e.patchAnswerId !== null) ids.add(e.patchAnswerId);
  }
  const vocab = Int32Array.from([...ids].sort((a, b) => a - b));
  const column = new Map<number, number>();
  vocab.forEach((id, i) => column.set(id, i));
  const cleanColumn = examples.map((e) => column.get(e.cleanAnswerId)!);
  const patchColumn = examples.map((e) =>
    e.patch && e.patchAnswerId !== null ? column.get(e.patchAnswerId)! : -1,
  );
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
