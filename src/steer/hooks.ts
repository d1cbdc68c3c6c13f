// Interventions as forward hooks: at each intervened site the rows the interventions act at are
// encoded once, and x ← x + Σ_i (v_i − f_i) d_i (+ α d_i for steering, + (ε' − ε) for the error
// node) is added in place. The sites run in layer order and everything downstream recomputes from
// the changed activation, so several interventions at several sites compose as the model wires
// them.

import type { SiteHook } from '../model/gptneox.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import { actsAt, type Intervention } from './intervention.ts';

export interface HookContext {
  /** The site's dictionary (the one the interventions were resolved with). */
  dictionary: (site: string) => Dictionary;
  /** Examples in the batch (rows are b*T + t). */
  batchSize: number;
  /** Absolute position of the batch's first token (the length of the past it continues). */
  offset: number;
  /** Each example's prompt length: `last`, negative positions and `all` count from it. */
  promptLengths: number[];
}

/** The hooks that apply `interventions` to a forward pass of the batch the context describes. */
export function interventionHooks(
  interventions: Intervention[],
  context: HookContext,
): Record<string, SiteHook> {
  const bySite = new Map<string, Intervention[]>();
  for (const iv of interventions) bySite.set(iv.site, [...(bySite.get(iv.site) ?? []), iv]);
  const hooks: Record<string, SiteHook> = {};
  for (const [site, list] of bySite) {
    const dict = context.dictionary(site);
    hooks[site] = (act) => applyAtSite(act, dict, list, context);
  }
  return hooks;
}

/** Adds the interventions' change to `act` [B*T*d] in place, at the rows they act at. */
export function applyAtSite(
  act: Float32Array,
  dict: Dictionary,
  list: Intervention[],
  context: HookContext,
): void {
  const d = dict.dIn;
  const F = dict.width;
  const B = context.batchSize;
  const T = act.length / (B * d);
  // The rows any intervention acts at, and which interventions act at each.
  const rows: number[] = [];
  const acting: Intervention[][] = [];
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const here = list.filter((iv) =>
        actsAt(iv.positions, context.offset + t, context.promptLengths[b]),
      );
      if (here.length === 0) continue;
      rows.push(b * T + t);
      acting.push(here);
    }
  if (rows.length === 0) return;
  const R = rows.length;
  const x = new Float32Array(R * d);
  rows.forEach((n, r) => x.set(act.subarray(n * d, (n + 1) * d), r * d));
  const needsError = list.some((iv) => iv.target.kind === 'error');
  // f from the activation as it arrives; the error only when an error node is intervened on.
  const f = dict.encode(x, R);
  const xHat = needsError ? dict.decode(f, R) : null;
  const delta = new Float32Array(d);
  for (let r = 0; r < R; r++) {
    delta.fill(0);
    for (const iv of acting[r]) {
      if (iv.target.kind === 'error') {
        // ε = x − x̂; ε' = 0, kε or the mean error; the change is ε' − ε.
        for (let j = 0; j < d; j++) {
          const eps = x[r * d + j] - xHat![r * d + j];
          const next =
            iv.op.kind === 'scale' ? iv.amount * eps : iv.op.kind === 'mean' ? iv.errorMean![j] : 0;
          delta[j] += next - eps;
        }
        continue;
      }
      const i = iv.target.index;
      const fi = f[r * F + i];
      const coefficient =
        iv.op.kind === 'steer'
          ? iv.amount
          : iv.op.kind === 'scale'
            ? (iv.amount - 1) * fi
            : iv.amount - fi;
      if (coefficient === 0) continue;
      const row = dict.decoderRow(i);
      for (let j = 0; j < d; j++) delta[j] += coefficient * row[j];
    }
    const o = rows[r] * d;
    for (let j = 0; j < d; j++) act[o + j] += delta[j];
  }
}
