// How well attribution patching and integrated gradients agree with exact single-node patching on
// the shipped organism, per site, and why IG disagrees at the early sites (docs/discover.md,
// "On the organism"). Run: `npx tsx scripts/discover-agreement.ts` (about a minute).
//
// Data: the organism's across-RC task, the first 20 examples of data/rc_train.jsonl (6 tokens
// each, the subject noun swapped). A node is one SAE feature or error term at one position of one
// example whose patch value differs from the clean one; its effect is the change of
// m = logit[patch answer] - logit[clean answer] when it alone is moved to its patch value (exact),
// or the library's estimate of that (attrib, ig with 10/50/100 steps).
//
// At the early sites (embed, mlp_0) it also patches nodes jointly, with the full model and a hook
// that adds each chosen node's Δ (Δf_i·W_D[i], or Δε) to the site at its position:
//   - the site's total (all of its nodes together = the site set to its patch activation),
//   - the top-k nodes by |effect| under each method's ranking, for growing k (how much of the
//     site's total effect the top-k nodes carry when patched together),
//   - each node removed from the fully patched site ("exact from the patch side").
// Everything is deterministic: fixed data, shipped weights, no sampling.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/model/load.ts';
import { GptNeoX, makeBatch } from '../src/model/gptneox.ts';
import { openSaes } from '../src/sae/library.ts';
import type { Dictionary } from '../src/sae/dictionary.ts';
import { loadTask, type TaskExample } from '../src/data/tasks.ts';
import { discover, type Discovery } from '../src/attribution/discover.ts';
import type { SiteNodes } from '../src/attribution/nodes.ts';
import { Rng } from '../src/random.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const MODEL_DIR = path.join(ROOT, 'models/organism');
export const DATA_FILE = path.join(ROOT, 'data/rc_train.jsonl');
export const EXAMPLES = 20;
export const IG_STEPS = [10, 50, 100] as const;
/** Sites where IG disagrees with exact patching (docs/discover.md). */
export const EARLY_SITES = ['embed', 'mlp_0'] as const;
/** k of the top-k curves (capped at each example's node count at the site). */
export const TOP_K = [1, 2, 3, 5, 10, 20, 50] as const;

type Method = 'exact' | 'attrib' | 'ig10' | 'ig50' | 'ig100';
const METHODS: Method[] = ['exact', 'attrib', 'ig10', 'ig50', 'ig100'];
/** The rankings compared in the top-k curves ('random': a seeded shuffle, the floor). */
const RANKINGS = ['exact', 'attrib', 'ig10', 'random'] as const;
const RANDOM_SEED = 1;
type Ranking = (typeof RANKINGS)[number];

/** One node: where it is and how its site moves when it is patched. */
interface NodeRef {
  example: number; // index in the task
  position: number;
  feature: number; // -1: the error node
  /** Its Δ at the site [d]: Δf_i·W_D[i] or Δε. */
  delta: Float32Array;
}

export interface SiteAgreement {
  site: string;
  nodes: number;
  r: Record<Exclude<Method, 'exact'>, number>;
}

export interface EarlySite {
  site: string;
  /** Mean over examples of the site's nodes patched together (the whole site patched). */
  joint: number;
  /** Mean over examples of the sums of the single-node effects. */
  sum: Record<Method, number>;
  /** Mean |exact| of a single node, and the mean of the per-example max |exact|. */
  meanAbsExact: number;
  /** r(ig10, exact from the patch side): node removed from the fully patched site. */
  rIgRemoval: number;
  /** r(exact, removal): single-node effects added at clean vs removed at patch. */
  rExactRemoval: number;
  /** Mean nodes per example at the site. */
  nodesPerExample: number;
  /** The first example's nodes: position, feature (-1 error), exact, attrib, ig10, removal. */
  firstExample: {
    position: number;
    feature: number;
    effects: Record<Method | 'removal', number>;
  }[];
  /**
   * Top-k nodes of each ranking patched together, mean over examples; `sumExact` and `sumIg` are
   * the sums of those nodes' single-node exact and IG effects (for the IG ranking).
   */
  topK: { k: number; joint: Record<Ranking, number>; sumExact: number; sumIg: number }[];
}

export interface Agreement {
  examples: number;
  sites: SiteAgreement[];
  all: SiteAgreement;
  early: EarlySite[];
  /** Seconds per method. */
  times: Record<Method, number>;
  /** Mean clean and patch m over the examples. */
  metric: { clean: number; patch: number };
  /** Largest |single-node effect from this script's full-model patch - the library's exact|. */
  selfCheck: number;
}

export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/**
 * Every node of every site, in one fixed order (batches, rows, feature entries, then the error),
 * with its effect. The order depends only on the clean and patch SAE codes, so it is the same for
 * every method (checked by the caller through the node keys).
 */
function nodesOf(
  dsc: Discovery,
  dictionaries: (site: string) => Dictionary,
  d: number,
): Map<string, { refs: NodeRef[]; effects: number[] }> {
  const out = new Map<string, { refs: NodeRef[]; effects: number[] }>();
  for (const site of dsc.sites) out.set(site, { refs: [], effects: [] });
  for (const bn of dsc.batches) {
    for (const [site, sn] of bn.sites) {
      const { refs, effects } = out.get(site)!;
      const dict = dictionaries(site);
      forEachNode(sn, bn.T, bn.lengths, d, (n, feature, e) => {
        const b = Math.floor(n / bn.T);
        let delta: Float32Array;
        if (feature < 0) delta = sn.errorDelta.slice(n * d, (n + 1) * d);
        else {
          const w = dict.decoderRow(feature);
          const a = sn.delta.value[e];
          delta = Float32Array.from(w, (v) => a * v);
        }
        refs.push({ example: bn.examples[b], position: n % bn.T, feature, delta });
        effects.push(feature < 0 ? sn.errorEffect[n] : sn.effect[e]);
      });
    }
  }
  return out;
}

/** Calls visit(row, feature, entry) for each feature entry and (feature -1) each live error. */
function forEachNode(
  sn: SiteNodes,
  T: number,
  lengths: number[],
  d: number,
  visit: (n: number, feature: number, entry: number) => void,
): void {
  const N = lengths.length * T;
  for (let n = 0; n < N; n++) {
    if (n % T >= lengths[Math.floor(n / T)]) continue;
    for (let e = sn.delta.rowStart[n]; e < sn.delta.rowStart[n + 1]; e++)
      visit(n, sn.delta.index[e], e);
    if (sn.errorDelta.subarray(n * d, (n + 1) * d).some((v) => v !== 0)) visit(n, -1, -1);
  }
}

/**
 * m for the clean input of each request with the site moved by its nodes' Δs (added at their
 * positions) or set to `base` first (the site's activation to start from, [T*d]; default clean).
 * Full model, one batch per chunk of rows.
 */
class SitePatcher {
  private readonly model: GptNeoX;
  private readonly examples: TaskExample[];
  private readonly d: number;

  constructor(model: GptNeoX, examples: TaskExample[]) {
    this.model = model;
    this.examples = examples;
    this.d = model.config.hiddenSize;
  }

  run(
    site: string,
    requests: { example: number; add: NodeRef[]; subtract?: NodeRef[]; base?: Float32Array }[],
  ): number[] {
    const out: number[] = [];
    const CHUNK = 256;
    for (let s = 0; s < requests.length; s += CHUNK) {
      const chunk = requests.slice(s, s + CHUNK);
      const batch = makeBatch(chunk.map((q) => this.examples[q.example].clean));
      const { seqLen: T } = batch;
      const d = this.d;
      const hook = (act: Float32Array) => {
        chunk.forEach((q, r) => {
          if (q.base) act.set(q.base, r * T * d);
          for (const node of q.add) addAt(act, node.delta, (r * T + node.position) * d, 1);
          for (const node of q.subtract ?? [])
            addAt(act, node.delta, (r * T + node.position) * d, -1);
        });
      };
      const pass = this.model.forward(batch, { hooks: { [site]: hook } });
      const V = this.model.config.vocabSize;
      chunk.forEach((q, r) => {
        const e = this.examples[q.example];
        const logits = pass.logits.subarray(r * V, (r + 1) * V);
        out.push(logits[e.patchAnswerId!] - logits[e.cleanAnswerId]);
      });
    }
    return out;
  }
}

function addAt(x: Float32Array, delta: Float32Array, offset: number, sign: number): void {
  for (let j = 0; j < delta.length; j++) x[offset + j] += sign * delta[j];
}

/** Indices of `values` by decreasing |value| (ties by index: deterministic). */
function byMagnitude(values: number[], indices: number[]): number[] {
  return [...indices].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

export function measureAgreement(): Agreement {
  const { config, weights, tokenizer } = loadModel(MODEL_DIR, { tokenizer: true });
  const library = openSaes(path.join(MODEL_DIR, 'saes'), config.numLayers, {
    modelWidth: config.hiddenSize,
  });
  const dictionaries = (site: string) => library.get(site);
  const task = loadTask(DATA_FILE, tokenizer!, {
    limit: EXAMPLES,
    maxLength: config.maxPositionEmbeddings,
  });
  const examples = task.examples;
  if (examples.length !== EXAMPLES)
    throw new Error(`${DATA_FILE}: expected ${EXAMPLES} usable examples, got ${examples.length}`);
  const model = new GptNeoX(config, weights);
  const d = config.hiddenSize;

  const runs = new Map<Method, Map<string, { refs: NodeRef[]; effects: number[] }>>();
  const times = {} as Record<Method, number>;
  let metric = { clean: 0, patch: 0 };
  for (const method of METHODS) {
    const steps = method.startsWith('ig') ? Number(method.slice(2)) : 10;
    const t0 = performance.now();
    const dsc = discover(model, dictionaries, examples, {
      method: method === 'exact' ? 'exact' : method === 'attrib' ? 'attrib' : 'ig',
      steps,
      nodesOnly: true,
      sites: library.sites(),
    });
    times[method] = (performance.now() - t0) / 1000;
    metric = { clean: dsc.metric.clean, patch: dsc.metric.patch! };
    runs.set(method, nodesOf(dsc, dictionaries, d));
  }
  const exact = runs.get('exact')!;
  const sites = [...exact.keys()];
  // The node lists must line up across methods.
  const key = (n: NodeRef) => `${n.example}/${n.position}/${n.feature}`;
  for (const [method, run] of runs)
    for (const site of sites) {
      const a = exact.get(site)!.refs.map(key).join(',');
      if (run.get(site)!.refs.map(key).join(',') !== a)
        throw new Error(`discover-agreement: ${method} has other nodes than exact at ${site}`);
    }

  const effectsOf = (method: Method, site: string) => runs.get(method)!.get(site)!.effects;
  const agreement = (site: string, pick: (m: Method) => number[]): SiteAgreement => {
    const ex = pick('exact');
    const r = {} as SiteAgreement['r'];
    for (const m of METHODS) if (m !== 'exact') r[m] = pearson(pick(m), ex);
    return { site, nodes: ex.length, r };
  };
  const siteRows = sites.map((site) => agreement(site, (m) => effectsOf(m, site)));
  const all = agreement('all', (m) => sites.flatMap((site) => effectsOf(m, site)));

  // Joint patching at the early sites.
  const patcher = new SitePatcher(model, examples);
  let selfCheck = 0;
  const early: EarlySite[] = EARLY_SITES.map((site) => {
    const { refs } = exact.get(site)!;
    const eff = (m: Method) => effectsOf(m, site);
    const perExample = examples.map((_, i) =>
      refs.flatMap((ref, j) => (ref.example === i ? [j] : [])),
    );
    const mClean = patcher.run(
      site,
      examples.map((_, i) => ({ example: i, add: [] })),
    );
    // Single nodes through this script's patcher, against the library's exact effects.
    const single = patcher.run(
      site,
      refs.map((ref) => ({ example: ref.example, add: [ref] })),
    );
    single.forEach((m, j) => {
      selfCheck = Math.max(selfCheck, Math.abs(m - mClean[refs[j].example] - eff('exact')[j]));
    });
    const joint = patcher.run(
      site,
      perExample.map((idx, i) => ({ example: i, add: idx.map((j) => refs[j]) })),
    );
    const jointEffect = joint.map((m, i) => m - mClean[i]);
    // Each node removed from the fully patched site: m(all) - m(all but this node).
    const removed = patcher.run(
      site,
      refs.map((ref, j) => ({
        example: ref.example,
        add: perExample[ref.example].filter((x) => x !== j).map((x) => refs[x]),
      })),
    );
    const removal = removed.map((m, j) => joint[refs[j].example] - m);

    const sum = {} as Record<Method, number>;
    for (const m of METHODS)
      sum[m] = mean(perExample.map((idx) => idx.reduce((s, j) => s + eff(m)[j], 0)));

    const topK: EarlySite['topK'] = [];
    for (const k of TOP_K) {
      if (perExample.every((idx) => idx.length < k) && k !== TOP_K[0]) break;
      const jointOf = {} as Record<Ranking, number>;
      let sumExact = 0;
      let sumIg = 0;
      const rng = new Rng(RANDOM_SEED);
      for (const ranking of RANKINGS) {
        const tops = perExample.map((idx) =>
          (ranking === 'random' ? rng.shuffle([...idx]) : byMagnitude(eff(ranking), idx)).slice(
            0,
            k,
          ),
        );
        const ms = patcher.run(
          site,
          tops.map((top, i) => ({ example: i, add: top.map((j) => refs[j]) })),
        );
        jointOf[ranking] = mean(ms.map((m, i) => m - mClean[i]));
        if (ranking === 'ig10') {
          sumExact = mean(tops.map((top) => top.reduce((s, j) => s + eff('exact')[j], 0)));
          sumIg = mean(tops.map((top) => top.reduce((s, j) => s + eff('ig10')[j], 0)));
        }
      }
      topK.push({ k, joint: jointOf, sumExact, sumIg });
    }
    return {
      site,
      joint: mean(jointEffect),
      sum,
      meanAbsExact: mean(eff('exact').map(Math.abs)),
      rIgRemoval: pearson(eff('ig10'), removal),
      rExactRemoval: pearson(eff('exact'), removal),
      nodesPerExample: refs.length / examples.length,
      firstExample: perExample[0].map((j) => {
        const effects = { removal: removal[j] } as Record<Method | 'removal', number>;
        for (const m of METHODS) effects[m] = eff(m)[j];
        return { position: refs[j].position, feature: refs[j].feature, effects };
      }),
      topK,
    };
  });

  return { examples: examples.length, sites: siteRows, all, early, times, metric, selfCheck };
}

/** The report printed by the script (the tables docs/discover.md quotes). */
export function formatAgreement(a: Agreement): string {
  const f = (x: number) => x.toFixed(3).padStart(8);
  const lines: string[] = [];
  lines.push(
    `organism, ${DATA_FILE.slice(ROOT.length)}, first ${a.examples} examples; ` +
      `m clean ${a.metric.clean.toFixed(2)}, patch ${a.metric.patch.toFixed(2)}`,
  );
  lines.push('Pearson r of per-node effects against exact single-node patching:');
  lines.push('site       nodes    attrib    ig10    ig50   ig100');
  for (const s of [...a.sites, a.all])
    lines.push(
      `${s.site.padEnd(8)}${String(s.nodes).padStart(7)}  ${f(s.r.attrib)}${f(s.r.ig10)}${f(s.r.ig50)}${f(s.r.ig100)}`,
    );
  const t = a.times;
  lines.push(
    `time: exact ${t.exact.toFixed(1)} s, attrib ${t.attrib.toFixed(1)} s, ig10 ${t.ig10.toFixed(1)} s, ` +
      `ig50 ${t.ig50.toFixed(1)} s, ig100 ${t.ig100.toFixed(1)} s`,
  );
  for (const e of a.early) {
    lines.push('');
    lines.push(
      `${e.site}: ${e.nodesPerExample.toFixed(1)} nodes per example; means over examples:`,
    );
    lines.push(`  all nodes patched together (the site patched)   ${f(e.joint)}`);
    for (const m of METHODS)
      lines.push(`  sum of single-node ${m.padEnd(6)} effects          ${f(e.sum[m])}`);
    lines.push(`  mean |exact| of one node                         ${f(e.meanAbsExact)}`);
    lines.push(`  r(ig10, node removed from the patched site)      ${f(e.rIgRemoval)}`);
    lines.push(`  r(exact, node removed from the patched site)     ${f(e.rExactRemoval)}`);
    lines.push('  top-k nodes patched together (ranked by |effect|), and for the ig10 top-k');
    lines.push('  the sums of their single-node exact and ig10 effects:');
    lines.push('     k  joint by: exact   attrib     ig10   random   sum exact  sum ig10');
    for (const row of e.topK)
      lines.push(
        `  ${String(row.k).padStart(4)}        ${f(row.joint.exact)} ${f(row.joint.attrib)} ${f(row.joint.ig10)} ${f(row.joint.random)}    ${f(row.sumExact)}  ${f(row.sumIg)}`,
      );
    if (e.firstExample.length <= 12) {
      lines.push('  first example, every node:');
      lines.push('  pos  feature     exact   attrib     ig10    ig100  removal');
      for (const n of e.firstExample)
        lines.push(
          `  ${String(n.position).padStart(3)}  ${(n.feature < 0 ? 'error' : String(n.feature)).padStart(7)}  ${f(n.effects.exact)} ${f(n.effects.attrib)} ${f(n.effects.ig10)} ${f(n.effects.ig100)} ${f(n.effects.removal)}`,
        );
    }
  }
  lines.push('');
  lines.push(
    `self-check: max |script single-node patch - library exact| = ${a.selfCheck.toExponential(1)}`,
  );
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(formatAgreement(measureAgreement()));
}
