// Next-token cross-entropy. N rows of V logits.

/**
 * logits [N, V], targets [N] (-1 = ignore) -> mean loss over the non-ignored rows and its
 * gradient dLogits [N, V] (zero on ignored rows). With no target at all the loss is 0.
 */
export function crossEntropy(
  logits: Float32Array,
  targets: Int32Array,
  V: number,
): { loss: number; dLogits: Float32Array } {
  const N = targets.length;
  if (logits.length !== N * V) {
    throw new Error(
      `crossEntropy: logits has ${logits.length} values, expected targets (${N}) x V (${V}) = ${N * V}`,
    );
  }
  let count = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (t !== -1 && (t < 0 || t >= V)) {
      throw new Error(
        `crossEntropy: target ${t} at row ${n} is outside [0, ${V}) and not -1 (ignore)`,
      );
    }
    if (t !== -1) count++;
  }
  const dLogits = new Float32Array(N * V);
  if (count === 0) return { loss: 0, dLogits };
  let total = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (t === -1) continue;
    const o = n * V;
    let max = -Infinity;
    for (let j = 0; j < V; j++) if (logits[o + j] > max) max = logits[o + j];
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[o + j] - max);
    const logSum = max + Math.log(sum);
    total += logSum - logits[o + t];
    const scale = 1 / (sum * count);
    for (let j = 0; j < V; j++) dLogits[o + j] = Math.exp(logits[o + j] - max) * scale;
    dLogits[o + t] -= 1 / count;
  }
  return { loss: total / count, dLogits };
}
