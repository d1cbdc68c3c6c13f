// Interventions on features: what `sfc intervene --do SITE:FEATURE[@POS]=OP` names, parsed with
// errors that point at the bad part, then resolved against a model and its dictionaries into the
// numbers the hooks apply (hooks.ts).
//
// At a site with activation x = W_D f + b_D + ε, intervening on features i with target values
// v_i is x ← x + Σ_i (v_i − f_i(x)) · d_i (d_i = W_D[i], the decoder row as stored): the error
// and the other features keep their values and nothing is re-encoded. The error node ε takes
// zero (x ← x̂), scale=k (ε ← kε) or mean (ε ← the corpus mean of ε). Steering adds α · d_i.

import type { LanguageModel } from '../model/language-model.ts';
import type { Dictionary } from '../sae/dictionary.ts';
import type { FeatureStats } from './feature-stats.ts';

/** Which token positions: prompt positions (negative from the prompt's end), or every one. */
export type Positions =
  | { kind: 'list'; positions: number[] }
  /** Every position of the prompt. */
  | { kind: 'all' }
  /** Every position of the prompt and every generated one. */
  | { kind: 'all+generated' };

export type Operation =
  | { kind: 'zero' }
  /** The feature's mean activation on the corpus (the error's mean vector). */
  | { kind: 'mean' }
  | { kind: 'set'; value: number }
  | { kind: 'scale'; factor: number }
  /** x ← x + α d_i; unit 'max': α in units of the feature's max activation on the corpus. */
  | { kind: 'steer'; alpha: number; unit: 'absolute' | 'max' };

export type Target = { kind: 'feature'; index: number } | { kind: 'error' };

export interface InterventionSpec {
  site: string;
  target: Target;
  positions: Positions;
  op: Operation;
  /** The text it was parsed from (for messages); absent when built in code. */
  text?: string;
}

export const DO_SYNTAX =
  'SITE:FEATURE[@POS]=OP, e.g. resid_3:485@last=zero; FEATURE is a feature index, or err for the ' +
  "site's error node; POS is a position (0-based, negative from the end, last), a list 1,3, all, " +
  'or all+generated (default all); OP is zero, mean, set=V, scale=K, steer=A (absolute) or ' +
  "steer=Amax (A times the feature's max activation on the corpus)";

function bad(text: string, part: string, expected: string): Error {
  return new Error(`--do ${JSON.stringify(text)}: ${part}; expected ${expected}`);
}

function parseNumber(text: string, what: string, value: string, example: string): number {
  const v = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(v)) throw bad(text, `${what} "${value}" is not a number`, example);
  return v;
}

function parsePositions(text: string, pos: string): Positions {
  if (pos === 'all') return { kind: 'all' };
  if (pos === 'all+generated') return { kind: 'all+generated' };
  const positions = pos.split(',').map((p) => {
    const item = p.trim();
    if (item === 'last') return -1;
    const v = Number(item);
    if (item === '' || !Number.isInteger(v))
      throw bad(
        text,
        `position "${item}" is not a token position`,
        'an integer (0 is the first token, -1 the last), last, a list like 1,3, all or all+generated',
      );
    return v;
  });
  return { kind: 'list', positions: [...new Set(positions)] };
}

function parseOperation(text: string, op: string): Operation {
  const [name, ...rest] = op.split('=');
  const arg = rest.join('=');
  const expected = 'zero, mean, set=V, scale=K, steer=A or steer=Amax';
  switch (name.trim()) {
    case 'zero':
    case 'mean':
      if (rest.length) throw bad(text, `"${name}" takes no value`, expected);
      return { kind: name.trim() as 'zero' | 'mean' };
    case 'set':
      return { kind: 'set', value: parseNumber(text, 'set value', arg, 'set=V, e.g. set=2.5') };
    case 'scale':
      return { kind: 'scale', factor: parseNumber(text, 'scale', arg, 'scale=K, e.g. scale=2') };
    case 'steer': {
      const max = /max$/.test(arg.trim());
      const alpha = parseNumber(
        text,
        'steering coefficient',
        max ? arg.trim().slice(0, -3) : arg,
        'steer=A (absolute) or steer=Amax (A times the max activation), e.g. steer=2max',
      );
      return { kind: 'steer', alpha, unit: max ? 'max' : 'absolute' };
    }
    default:
      throw bad(text, `operation "${op}" is unknown`, expected);
  }
}

/** Parses one `--do` value (syntax only; `resolveInterventions` checks it against the model). */
export function parseIntervention(text: string): InterventionSpec {
  const eq = text.indexOf('=');
  if (eq < 0) throw bad(text, 'no "=OP"', DO_SYNTAX);
  const [where, op] = [text.slice(0, eq), text.slice(eq + 1)];
  const colon = where.indexOf(':');
  if (colon < 0) throw bad(text, 'no ":FEATURE" after the site', DO_SYNTAX);
  const site = where.slice(0, colon).trim();
  if (site === '') throw bad(text, 'the site is empty', DO_SYNTAX);
  const [feature, ...posParts] = where.slice(colon + 1).split('@');
  if (posParts.length > 1) throw bad(text, 'more than one "@"', DO_SYNTAX);
  const f = feature.trim();
  let target: Target;
  if (f === 'err' || f === 'error') target = { kind: 'error' };
  else {
    const index = Number(f);
    if (f === '' || !Number.isInteger(index) || index < 0)
      throw bad(
        text,
        `feature "${f}" is not a feature index`,
        'a non-negative integer (a neuron with --saes neurons) or err',
      );
    target = { kind: 'feature', index };
  }
  const positions: Positions = posParts.length
    ? parsePositions(text, posParts[0].trim())
    : { kind: 'all' };
  return { site, target, positions, op: parseOperation(text, op), text };
}

/** An intervention with its numbers: what hooks.ts applies. */
export interface Intervention {
  spec: InterventionSpec;
  site: string;
  target: Target;
  positions: Positions;
  /** For features: the value the op sets (set/zero/mean), the factor (scale) or the α added (steer). */
  op: Operation;
  /** zero/mean/set: the target value v; scale: K; steer: α in absolute units. */
  amount: number;
  /** The error node's mean vector [d] (op mean on the error), else null. */
  errorMean: Float32Array | null;
}

export interface ResolveContext {
  model: LanguageModel;
  /** The site's dictionary (an identity dictionary for neurons). */
  dictionary: (site: string) => Dictionary;
  /** The site's corpus statistics; asked for only by mean and steer=Amax. */
  stats?: (site: string) => FeatureStats;
}

const describe = (s: InterventionSpec) =>
  s.text !== undefined
    ? `--do ${JSON.stringify(s.text)}`
    : `${s.site}:${s.target.kind === 'error' ? 'err' : s.target.index}`;

/** Checks specs against the model (sites, widths, ops) and computes their amounts. */
export function resolveInterventions(
  specs: InterventionSpec[],
  context: ResolveContext,
): Intervention[] {
  const { model } = context;
  const seen = new Set<string>();
  const out = specs.map((spec): Intervention => {
    const where = describe(spec);
    if (!model.sites.includes(spec.site))
      throw new Error(
        `${where}: unknown site "${spec.site}"; this model's sites are ${model.sites.join(', ')}`,
      );
    const dict = context.dictionary(spec.site);
    const key = `${spec.site}:${spec.target.kind === 'error' ? 'err' : spec.target.index}`;
    if (seen.has(key))
      throw new Error(
        `${where}: ${key} is intervened on twice; give each feature (or error node) one operation`,
      );
    seen.add(key);
    const stats = () => {
      if (!context.stats)
        throw new Error(`${where}: ${spec.op.kind} needs corpus statistics (a corpus)`);
      return context.stats(spec.site);
    };
    if (spec.target.kind === 'error') {
      if (dict.kind === 'identity')
        throw new Error(
          `${where}: neurons have no error node (the identity dictionary reconstructs exactly)`,
        );
      const op = spec.op;
      if (op.kind === 'set' || op.kind === 'steer')
        throw new Error(
          `${where}: the error node is a vector; it takes zero, mean or scale=K, not ${op.kind}`,
        );
      return {
        spec,
        site: spec.site,
        target: spec.target,
        positions: spec.positions,
        op,
        amount: op.kind === 'scale' ? op.factor : 0,
        errorMean: op.kind === 'mean' ? stats().errorMean : null,
      };
    }
    const i = spec.target.index;
    if (i >= dict.width)
      throw new Error(
        `${where}: feature ${i} is out of range: the ${dict.kind === 'identity' ? 'site' : 'dictionary'} at ${spec.site} has ${dict.width} ${dict.kind === 'identity' ? 'neurons' : 'features'} (0..${dict.width - 1})`,
      );
    const op = spec.op;
    let amount: number;
    switch (op.kind) {
      case 'zero':
        amount = 0;
        break;
      case 'mean':
        amount = stats().mean[i];
        break;
      case 'set':
        amount = op.value;
        break;
      case 'scale':
        amount = op.factor;
        break;
      case 'steer': {
        if (op.unit === 'absolute') amount = op.alpha;
        else {
          const max = stats().max[i];
          if (!(max > 0))
            throw new Error(
              `${where}: feature ${i} at ${spec.site} never fires on the corpus (max activation ${max}); give an absolute steer=A`,
            );
          amount = op.alpha * max;
        }
        break;
      }
    }
    return {
      spec,
      site: spec.site,
      target: spec.target,
      positions: spec.positions,
      op,
      amount,
      errorMean: null,
    };
  });
  // Layer order, as the hooks run them (the order of model.sites).
  return out.sort((a, b) => model.sites.indexOf(a.site) - model.sites.indexOf(b.site));
}

/** Whether an intervention acts at absolute position `t` of a sequence whose prompt has `promptLength` tokens. */
export function actsAt(positions: Positions, t: number, promptLength: number): boolean {
  switch (positions.kind) {
    case 'all':
      return t < promptLength;
    case 'all+generated':
      return true;
    case 'list':
      return positions.positions.some((p) => (p < 0 ? promptLength + p : p) === t);
  }
}

/** Checks list positions against a prompt's length (a position outside it would do nothing). */
export function checkPositions(interventions: Intervention[], promptLength: number): void {
  for (const iv of interventions) {
    if (iv.positions.kind !== 'list') continue;
    for (const p of iv.positions.positions) {
      const t = p < 0 ? promptLength + p : p;
      if (t < 0 || t >= promptLength)
        throw new Error(
          `${describe(iv.spec)}: position ${p} is outside the prompt's ${promptLength} tokens (0..${promptLength - 1}, or -1..-${promptLength} from the end)`,
        );
    }
  }
}
