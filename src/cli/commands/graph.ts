// sfc graph: the attribution graph of one prompt through per-layer transcoders, pruned by
// influence, written as our own file and as the JSON Neuronpedia's and circuit-tracer's viewers load.

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultModelDir } from '../../model/load.ts';
import { openModel } from '../../model/load-family.ts';
import { loadTranscoders } from '../../transcoders/load.ts';
import { buildReplacement } from '../../graphs/replacement.ts';
import { buildGraph } from '../../graphs/graph.ts';
import { graphScores, pruneGraph } from '../../graphs/prune.ts';
import { toNeuronpedia } from '../../graphs/export.ts';
import { readNeuronpediaGraph } from '../../graphs/neuronpedia-file.ts';
import { importGraph } from '../../graphs/import.ts';
import { LABELS_FILE, readLabels } from '../../organism/feature-labels.ts';
import { DEFAULT_OUT, bosMode, bosNote, bosOptions, positiveNumber } from '../options.ts';

interface GraphFlags {
  prompt?: string;
  import?: string;
  model: string;
  transcoders?: string;
  gemmaWidth?: string;
  gemmaL0?: string;
  out: string;
  slug?: string;
  nodeThreshold: string;
  edgeThreshold: string;
  includeFirstPosition?: boolean;
  bos?: boolean;
  json?: boolean;
}

/** Lower-case letters, digits and dashes only, at most 60 characters. */
function slugOf(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
}

function fraction(flag: string, text: string): number {
  const v = positiveNumber(flag, text);
  if (v > 1) throw new Error(`${flag}: expected a fraction in (0, 1], got "${text}"`);
  return v;
}

export function register(program: Command): void {
  program
    .command('graph')
    .summary('Attribution graph of one prompt (transcoders, direct effects, pruned by influence).')
    .description(
      [
        'Replaces every MLP by its transcoder plus an error term, freezes attention patterns and ' +
          'norm scales on the prompt, and computes every direct effect between token embeddings, ' +
          'active features, error nodes and the top logits. Prunes as circuit-tracer does and ' +
          'writes <out>/<slug>.json (the Neuronpedia / circuit-tracer graph format) and ' +
          '<out>/<slug>.graph.json (every node and edge, unpruned, with each target input and constant).',
        '',
        "--transcoders takes circuit-tracer's folders (config.yaml with model_kind transcoder_set " +
          "or cross_layer_transcoder; a CLT's features write to every later layer, and its decoders " +
          'are read lazily) or a Gemma Scope transcoder release (layer_L/width_W/average_l0_K/' +
          'params.npz; pick with --gemma-width and --gemma-l0 when it holds several).',
        '',
        'With --import FILE, reads a graph JSON from circuit-tracer or Neuronpedia, checks it, prints ' +
          'its nodes by feature_type and writes it as our own <out>/<slug>.graph.json.',
        '',
        'Example: sfc graph --prompt "The parents that the dog sees"',
        '         sfc graph --prompt "The parents that the dog sees" --transcoders models/organism/clt',
      ].join('\n'),
    )
    .option('--prompt <text>', 'the prompt')
    .addOption(bosOptions()[0])
    .addOption(bosOptions()[1])
    .option('--import <file>', 'read a graph JSON made elsewhere instead')
    .option('--model <dir>', 'model folder', defaultModelDir())
    .option(
      '--transcoders <dir>',
      'transcoder_set, cross_layer_transcoder or Gemma Scope folder (default <model>/transcoders)',
    )
    .option('--gemma-width <W>', 'Gemma Scope: the width_W folder, e.g. 16k')
    .option('--gemma-l0 <K>', 'Gemma Scope: the average_l0_K nearest K')
    .option('--out <dir>', 'output folder', DEFAULT_OUT)
    .option('--slug <name>', 'graph name (default: from the prompt)')
    .option('--node-threshold <f>', 'keep nodes up to this cumulative influence', '0.8')
    .option('--edge-threshold <f>', 'keep edges up to this cumulative influence', '0.98')
    .option(
      '--include-first-position',
      'keep features at position 0 (left to the error node by default)',
    )
    .option('--json', 'print the summary as JSON')
    .action((o: GraphFlags) => {
      if (o.import) {
        const g = readNeuronpediaGraph(o.import);
        const own = importGraph(g, o.import);
        // The file's slug names our copy, reduced to a safe file name (it is the file's text).
        const slug =
          o.slug ??
          (slugOf(g.metadata.slug) || slugOf(path.basename(o.import, '.json')) || 'graph');
        fs.mkdirSync(o.out, { recursive: true });
        const ownFile = path.join(o.out, `${slug}.graph.json`);
        fs.writeFileSync(ownFile, JSON.stringify(own));
        const byType: Record<string, number> = {};
        for (const t of own.featureTypes) byType[t] = (byType[t] ?? 0) + 1;
        const summary = {
          slug: g.metadata.slug,
          scan: g.metadata.scan,
          nodes: g.nodes.length,
          links: g.links.length,
          featureTypes: byType,
          wrote: ownFile,
        };
        if (o.json) return void console.log(JSON.stringify(summary));
        const types = Object.entries(byType)
          .map(([t, n]) => `${n} ${t}`)
          .join(', ');
        console.log(
          `${o.import}: ${summary.nodes} nodes (${types}), ${summary.links} links (${summary.scan})`,
        );
        return void console.log(`wrote ${ownFile}`);
      }
      if (!o.prompt) throw new Error('give --prompt TEXT (or --import FILE)');
      const nodeThreshold = fraction('--node-threshold', o.nodeThreshold);
      const edgeThreshold = fraction('--edge-threshold', o.edgeThreshold);
      // Any supported family: GPT-NeoX on its own engine, the others on the generic one.
      const { model, tokenizer } = openModel(o.model, { tokenizer: true });
      if (!tokenizer) throw new Error(`${o.model}: no tokenizer.json, needed to read --prompt`);
      const setDir = o.transcoders ?? path.join(o.model, 'transcoders');
      const set = loadTranscoders(setDir, {
        width: o.gemmaWidth,
        l0: o.gemmaL0 === undefined ? undefined : positiveNumber('--gemma-l0', o.gemmaL0),
      });
      // Ground-truth labels (sfc transcoder label), shown as each feature's clerp when present.
      const labelsFile = path.join(setDir, LABELS_FILE);
      const labels = new Map(
        fs.existsSync(labelsFile)
          ? readLabels(labelsFile).map((l) => [
              `${l.site}/${l.feature}`,
              l.label === null ? '' : `${l.label} (F1 ${l.f1.toFixed(2)})`,
            ])
          : [],
      );
      const { ids, bos } = tokenizer.encodePrompt(o.prompt, bosMode(o.bos));
      if (ids.length === 0) throw new Error('--prompt: the prompt has no tokens');
      const maxPositions = model.shape.maxPositions;
      if (ids.length > maxPositions)
        throw new Error(
          `--prompt: ${ids.length} tokens${bos ? ' (BOS included)' : ''}, more than the model's context of ${maxPositions} positions`,
        );
      console.error(bosNote(tokenizer, o.bos, bos));
      const started = Date.now();
      const replacement = buildReplacement(
        model,
        set.transcoders,
        ids,
        o.includeFirstPosition ? 0 : 1,
      );
      const graph = buildGraph(replacement);
      const pruned = pruneGraph(graph, nodeThreshold, edgeThreshold);
      const scores = graphScores(graph);
      const seconds = (Date.now() - started) / 1000;
      const slug = o.slug ?? (slugOf(o.prompt) || 'graph');
      const scan = set.modelName ?? path.basename(path.resolve(o.model));
      const exported = toNeuronpedia(graph, pruned, {
        slug,
        scan,
        prompt: o.prompt,
        tokenString: (id) => tokenizer.tokenString(id),
        numLayers: model.config.numLayers,
        nodeThreshold,
        edgeThreshold,
        clerp: (i) => {
          const node = graph.nodes[i];
          return node.kind === 'feature'
            ? labels.get(`mlp_${node.layer}/${node.feature}`)
            : undefined;
        },
      });
      fs.mkdirSync(o.out, { recursive: true });
      fs.writeFileSync(path.join(o.out, `${slug}.json`), JSON.stringify(exported));
      const n = graph.nodes.length;
      const edges: [number, number, number][] = [];
      graph.targets.forEach((t, k) => {
        for (let s = 0; s < n; s++) {
          const w = graph.adjacency[k * n + s];
          if (w !== 0) edges.push([t, s, w]);
        }
      });
      const own = {
        prompt: o.prompt,
        ids,
        nodes: graph.nodes,
        edges,
        targets: graph.targets,
        inputs: Array.from(graph.inputs),
        constants: Array.from(graph.constants),
        influence: Array.from(pruned.nodeInfluence),
        kept: Array.from(pruned.nodeMask),
        scores,
      };
      fs.writeFileSync(path.join(o.out, `${slug}.graph.json`), JSON.stringify(own));
      const count = (kind: string) => graph.nodes.filter((x) => x.kind === kind).length;
      const summary = {
        slug,
        seconds,
        tokens: ids.length,
        transcoders: set.kind,
        features: count('feature'),
        logits: count('logit'),
        edges: edges.length,
        keptNodes: exported.nodes.length,
        keptLinks: exported.links.length,
        replacementScore: scores.replacement,
        completenessScore: scores.completeness,
      };
      if (o.json) return void console.log(JSON.stringify(summary));
      console.log(
        `${ids.length} tokens, ${summary.features} active features, ${summary.logits} logits, ${edges.length} nonzero edges (${seconds.toFixed(2)} s)`,
      );
      console.log(`pruned: ${summary.keptNodes} nodes, ${summary.keptLinks} links`);
      console.log(
        `replacement score ${scores.replacement.toFixed(3)}, completeness ${scores.completeness.toFixed(3)}`,
      );
      console.log(
        `wrote ${path.join(o.out, slug + '.json')} and ${path.join(o.out, slug + '.graph.json')}`,
      );
    });
}
