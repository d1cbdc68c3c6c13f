// The metric of a SHIFT circuit: the probe's logit on an example, signed so that larger means
// more wrong (z for class-0 examples, -z for class-1 ones). It reads the probe's residual site,
// so discovery runs only the layers up to it. d model width, T tokens of a batch (padded).

import type { Metric } from '../attribution/metric.ts';
import type { Probe } from './probe.ts';

/**
 * m_e = s_e (w · mean_t x_t + b) over example e's `lengths[e]` real tokens, with s_e = +1 or -1
 * per example (for SHIFT: +1 where the right class is 0, -1 where it is 1).
 */
export function probeMetric(probe: Probe, lengths: number[], signs: number[]): Metric {
  const d = probe.weight.length;
  if (lengths.length !== signs.length)
    throw new Error(`probe metric: ${lengths.length} lengths but ${signs.length} signs`);
  return {
    readout: probe.site,
    evaluate(values, example, dValues) {
      const len = lengths[example];
      const s = signs[example];
      if (len === undefined) throw new Error(`probe metric: no example ${example}`);
      let z = 0;
      for (let t = 0; t < len; t++)
        for (let j = 0; j < d; j++) z += probe.weight[j] * values[t * d + j];
      if (dValues)
        for (let t = 0; t < len; t++)
          for (let j = 0; j < d; j++) dValues[t * d + j] = (s * probe.weight[j]) / len;
      return s * (z / len + probe.bias);
    },
  };
}
