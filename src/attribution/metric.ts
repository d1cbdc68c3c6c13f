// The metric m whose changes circuits explain: a function of one example's last-token logits.
// V vocabulary, V' = the metric's own vocabulary when it names one (only those logits are computed).

import type { TaskExample } from '../data/tasks.ts';

export interface Metric {
  /**
   * Vocabulary ids whose logits the metric reads. When given, the model's head computes only these
   * columns (a [V', d] slice of embed_out) and `evaluate` sees logits indexed like this list; when
   * absent it sees all V logits.
   */
  readonly vocab?: Int32Array;
  /**
   * m for example `example` (its index in the task) from its last-token logits [V' or V]; writes
   * ∂m/∂logits into `dLogits` (same length, zero-filled by the caller) when given.
   */
  evaluate(logits: Float32Array, example: number, dLogits?: Float32Array): number;
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
