// TRAINING.md for the model organism, written from the records the stages leave in
// <out>/training/ (model.json, saes.json, labels.json, transcoders.json, clt.json), with the curves drawn as SVG line charts.
// The charts are plain SVG text written here (a few axes and polylines), so no plotting package.

import fs from 'node:fs';
import path from 'node:path';
import { CONFIDENT_F1, LABEL_RECORD, LABEL_SEED, LABELS_FILE } from './feature-labels.ts';
import {
  readLabelRecord,
  readModelRecord,
  readSaeRecord,
  readTranscoderRecord,
  type SaeRecordFile,
  type TranscoderRecordFile,
} from './records-file.ts';
import { TRANSCODER_STAGE_FILES, type TranscoderStage } from './train-transcoders.ts';
import { MODEL_RECORD, MODEL_STAGE_DEFAULTS, TRAINING_DIR } from './train-model.ts';
import { SAE_RECORD, SAES_DIR } from './train-saes.ts';

interface Series {
  name: string;
  points: [number, number][];
}

interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Log-scale y axis (values must be positive). */
  logY?: boolean;
  yMin?: number;
  yMax?: number;
}

const COLOURS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
  '#393b79',
  '#637939',
  '#843c39',
];

const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About 5 round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const span = hi - lo || 1;
  const raw = span / 5;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= 6) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

const fmt = (v: number) =>
  Math.abs(v) >= 1000 ? `${v / 1000}k` : String(Number(v.toPrecision(4)));

/** A line chart of several series as a standalone SVG document. */
function lineChartSvg(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 360;
  const left = 64;
  const right = 150;
  const top = 36;
  const bottom = 48;
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ty = (y: number) => (o.logY ? Math.log10(y) : y);
  const ys = all.map((p) => ty(p[1]));
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const yMin = o.yMin !== undefined ? ty(o.yMin) : Math.min(...ys);
  const yMax = o.yMax !== undefined ? ty(o.yMax) : Math.max(...ys);
  const ySpan = yMax - yMin || 1;
  const px = (x: number) => left + ((x - xMin) / (xMax - xMin)) * (W - left - right);
  const py = (y: number) => top + (1 - (ty(y) - yMin) / ySpan) * (H - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - right / 2 + left / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(o.title)}</text>`,
  ];
  for (const x of ticks(xMin, xMax)) {
    parts.push(
      `<line x1="${px(x)}" y1="${top}" x2="${px(x)}" y2="${H - bottom}" stroke="#eee"/>`,
      `<text x="${px(x)}" y="${H - bottom + 14}" text-anchor="middle">${fmt(x)}</text>`,
    );
  }
  const yTicks = o.logY
    ? ticks(yMin, yMax)
        .filter((e) => Number.isInteger(e))
        .map((e) => Math.pow(10, e))
    : ticks(yMin, yMax);
  if (o.logY && yTicks.length < 3) {
    yTicks.length = 0;
    for (const m of [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9])
      for (let e = Math.floor(yMin); e <= Math.ceil(yMax); e++) {
        const v = m * Math.pow(10, e);
        if (Math.log10(v) >= yMin && Math.log10(v) <= yMax) yTicks.push(v);
      }
  }
  for (const y of yTicks) {
    parts.push(
      `<line x1="${left}" y1="${py(y)}" x2="${W - right}" y2="${py(y)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${fmt(y)}</text>`,
    );
  }
  parts.push(
    `<rect x="${left}" y="${top}" width="${W - left - right}" height="${H - top - bottom}" fill="none" stroke="#444"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text transform="translate(16 ${(top + H - bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = s.points
      .filter(([, y]) => !o.logY || y > 0)
      .map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`)
      .join(' ');
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      parts.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${colour}"/>`);
    } else
      parts.push(`<polyline points="${pts}" fill="none" stroke="${colour}" stroke-width="1.5"/>`);
    const ly = top + 6 + i * 15;
    parts.push(
      `<line x1="${W - right + 10}" y1="${ly}" x2="${W - right + 28}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${W - right + 32}" y="${ly + 4}">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** Sites trained differently from the default (SITE_SAE_OVERRIDES), as a clause. */
function siteOverrides(saes: SaeRecordFile): string {
  const parts = saes.sites
    .filter((s) => s.config)
    .map(({ site, config: c }) => {
      const kind =
        c!.kind === 'topk' ? `TopK with k = ${c!.k}` : `ReLU with λ = ${c!.l1 ?? saes.l1}`;
      return `${site}: ${kind}, ${c!.steps ?? saes.steps} steps, lr ${c!.lr ?? saes.lr}`;
    });
  if (parts.length === 0) return '';
  return (
    ` — except ${parts.join('; ')} (the embedding is a lookup table; a sparse TopK code gives the ` +
    'gendered words features of their own, where the L1 code was dense and kept gender in its ' +
    'error: see `SITE_SAE_OVERRIDES` in src/organism/train-saes.ts and docs/shift.md)'
  );
}

/** How λ and the learning rate were chosen (a one-off sweep, by hand, before the final run). */
const SAE_SWEEP = [
  'λ and the learning rate come from a brief sweep on an early checkpoint of the model (step 400; 120k training',
  'tokens, width 1024, batch 1024; metrics on 8192 held-out tokens). Higher λ gave sparser codes but left many features',
  'dead; λ = 1 at lr 3e-4 kept L0 in the 10–40 range with FVE > 0.95 and few dead features:',
  '',
  '| site | λ | lr | steps | L0 | FVE | dead |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  '| resid_2 | 3 | 5e-4 | 800 | 15.1 | 0.940 | 51.8% |',
  '| resid_2 | 2 | 5e-4 | 800 | 17.0 | 0.963 | 44.8% |',
  '| resid_2 | 1.5 | 3e-4 | 800 | 22.6 | 0.967 | 21.6% |',
  '| resid_2 | 1 | 3e-4 | 800 | 29.0 | 0.977 | 7.6% |',
  '| attn_1 | 3 | 5e-4 | 800 | 19.2 | 0.948 | 56.7% |',
  '',
  '(A first round at lr 1e-3 and 300 steps on the step-200 checkpoint, resid_1 and mlp_1, λ 1/2/4: L0 31–35/24–27/23,',
  'FVE 0.98/0.95–0.97/0.89–0.93, dead 12–37%/33–47%/41–46%.)',
  '',
];

/** A stage's record through its reader; null when that stage has not run. */
function readRecord<T>(out: string, name: string, read: (file: string) => T): T | null {
  const file = path.join(out, TRAINING_DIR, name);
  return fs.existsSync(file) ? read(file) : null;
}

/** Bytes of every file under dir. */
function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(p) : fs.statSync(p).size;
  }
  return total;
}

// A measurement recorded as null (it was NaN) shows as a dash, and is left out of the charts.
const fixed = (x: number | null, digits: number) => (x === null ? '—' : x.toFixed(digits));
const pct = (x: number | null) => (x === null ? '—' : `${(100 * x).toFixed(1)}%`);
const measuredPoints = (points: [number, number | null][]): [number, number][] =>
  points.filter((p): p is [number, number] => p[1] !== null);
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const minutes = (s: number) => (s >= 90 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`);

/** Writes <out>/TRAINING.md and the charts it shows (<out>/training/*.svg). */
export function writeReport(out: string): string {
  const model = readRecord(out, MODEL_RECORD, readModelRecord);
  const saes = readRecord(out, SAE_RECORD, readSaeRecord);
  const labels = readRecord(out, LABEL_RECORD, readLabelRecord);
  const md: string[] = ['# The model organism: how it was trained', ''];
  md.push(
    'Retrain everything with `npm run organism` (or one stage: `npm run organism -- --stage model|saes|labels|transcoders|clt|report`);',
    'every corpus and initialisation comes from a fixed seed, so a rerun reproduces these files.',
    'This file is written by `src/organism/report.ts` from the records in `training/`.',
    '',
  );

  if (model) {
    const c = model.config;
    const sc = { ...MODEL_STAGE_DEFAULTS, ...model.schedule };
    md.push(
      '## Model',
      '',
      `GPT-NeoX, ${c.numLayers} layers, d_model ${c.hiddenSize}, ${c.numHeads} heads, MLP ${c.intermediateSize}, ` +
        `rotary_pct ${c.rotaryPct}, ${c.useParallelResidual ? 'parallel' : 'sequential'} residual, context ${c.maxPositionEmbeddings}, ` +
        `vocabulary ${c.vocabSize} (the organism tokenizer's 805 tokens padded to a multiple of 64): ` +
        `${(model.parameters / 1e6).toFixed(2)} M parameters.`,
      '',
      `Trained on fresh texts from the agreement grammar (\`src/organism/grammar.ts\`, seed ${model.seed}, mix \`ORGANISM_MIX\`: ` +
        `${JSON.stringify(model.mix)}), rows of ${model.ctx} tokens packed from text starts with \`<|endoftext|>\` between texts, ` +
        `batch ${model.batchSize} rows; AdamW lr ${sc.lr}, betas (${sc.betas.join(', ')}), weight decay ${sc.weightDecay} on matrices, ` +
        `${sc.warmupSteps} warmup steps then cosine towards ${100 * sc.finalLrFraction}% over at most ${model.maxSteps} steps, ` +
        `gradient norm clipped at ${sc.clipNorm}. The four \`data/*_train.jsonl\` agreement tasks are checked every ${sc.evalEvery} steps; ` +
        `training stops at the first check from step ${sc.minSteps} on where all four reach ${100 * sc.target}% ` +
        '(they are solved long before; the extra steps are for the rest of the language).',
      '',
      `**${model.steps} steps, ${(model.tokensSeen / 1e6).toFixed(2)} M tokens, ${minutes(model.seconds)}** ` +
        `(one GEMM thread, on the project's 2-core machine shared with other jobs); target ${model.reachedTarget ? 'reached' : 'NOT reached'}. ` +
        `Final training loss ${model.losses.length ? fixed(model.losses.at(-1)![1], 3) : '?'} nats/token.`,
      '',
      '![Training loss and agreement accuracy](training/model-curves.svg)',
      '',
      'Agreement accuracy on the held-out test files (`data/*_test.jsonl`, generated from a different seed than the train files):',
      '',
      '| template | accuracy | mean logit diff | examples |',
      '| --- | --- | --- | --- |',
      ...Object.entries(model.test).map(
        ([name, s]) => `| ${name} | ${pct(s.accuracy)} | ${fixed(s.logitDiff, 2)} | ${s.n} |`,
      ),
      '',
    );
    const lossSvg = lineChartSvg([{ name: 'train loss', points: measuredPoints(model.losses) }], {
      title: 'Model training loss',
      xLabel: 'step',
      yLabel: 'cross-entropy (nats/token)',
      logY: true,
    });
    const accSvg = lineChartSvg(
      Object.keys(model.test).map((name) => ({
        name,
        points: measuredPoints(
          model.evals.map((e) => {
            const a = e.accuracy[name];
            return [e.step, a === null ? null : 100 * (a ?? 0)];
          }),
        ),
      })),
      {
        title: 'Agreement accuracy (train files)',
        xLabel: 'step',
        yLabel: '%',
        yMin: 40,
        yMax: 100,
      },
    );
    fs.writeFileSync(
      path.join(out, TRAINING_DIR, 'model-curves.svg'),
      stackSvgs([lossSvg, accSvg]),
    );
  }

  if (saes) {
    md.push(
      '## Sparse autoencoders',
      '',
      `One ReLU SAE per site in \`${SAES_DIR}/<site>/\` (SAELens layout), width ${saes.width}, L1 λ = ${saes.l1} in normalised units ` +
        `(inputs scaled to E‖x‖² = d; see docs/sae.md), ${saes.steps} steps of ${saes.batchSize} activations, Adam lr ${saes.lr}, ` +
        `dead-feature resampling${siteOverrides(saes)}. Activations: ${(saes.tokens / 1e3).toFixed(0)}k tokens from fresh grammar texts (seed 101) ` +
        `collected once at all sites in ${minutes(saes.collectSeconds)}; training took ` +
        `${minutes(saes.sites.reduce((s, x) => s + x.seconds, 0))} for all sites. ` +
        `Metrics below are on held-out text (seed 202, ${Math.round(saes.evaluation[0]?.tokens ?? 0)} tokens; evaluated in ${minutes(saes.evalSeconds)}): ` +
        'L0 = mean active features per token, FVE = fraction of variance explained, dead = never active on these tokens, ' +
        'loss recovered = (L_zero − L_SAE) / (L_zero − L_clean) with the site replaced by the reconstruction or by zeros.',
      '',
      '| site | L0 | FVE | dead | loss clean | loss SAE | loss zero | loss recovered |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...saes.evaluation.map(
        (r) =>
          `| ${r.site} | ${fixed(r.l0, 1)} | ${fixed(r.fve, 3)} | ${pct(r.deadFraction)} | ${fixed(r.lossClean, 4)} | ` +
          `${fixed(r.lossSae, 4)} | ${fixed(r.lossZero, 4)} | ${pct(r.lossRecovered)} |`,
      ),
      '',
      '![SAE training curves](training/sae-curves.svg)',
      '',
      ...SAE_SWEEP,
    );
    const fveSvg = lineChartSvg(
      saes.sites.map((s) => ({
        name: s.site,
        points: measuredPoints(s.curve.map(([x, fve]) => [x, fve])),
      })),
      {
        title: 'SAE fraction of variance explained (training batches)',
        xLabel: 'step',
        yLabel: 'FVE',
        yMax: 1,
      },
    );
    const l0Svg = lineChartSvg(
      saes.sites.map((s) => ({
        name: s.site,
        points: measuredPoints(s.curve.map(([x, , l0]) => [x, l0])),
      })),
      {
        title: 'SAE L0 (training batches)',
        xLabel: 'step',
        yLabel: 'active features per token',
        logY: true,
      },
    );
    fs.writeFileSync(path.join(out, TRAINING_DIR, 'sae-curves.svg'), stackSvgs([fveSvg, l0Svg]));
  }

  if (labels) {
    md.push(
      '## Ground-truth feature labels',
      '',
      `\`${LABELS_FILE}\` (written by \`sfc label\`): for every feature of every site, the word annotation ` +
        '(`src/organism/labels.ts`, e.g. `pending_pl`, `subject_sg`, `in_object_rc`) that best predicts where the feature is ' +
        'active (activation > 0), with precision = P(label | active), recall = P(active | label), F1 and firing frequency, ' +
        `over ${(labels.tokens / 1e3).toFixed(0)}k held-out tokens (seed 404). Features that never fire get label null. ` +
        `Confident = F1 ≥ ${labels.minF1 ?? CONFIDENT_F1}.`,
      '',
      '| site | features | alive | confident | most common confident labels |',
      '| --- | --- | --- | --- | --- |',
      ...labels.summary.map(
        (s) =>
          `| ${s.site} | ${s.features} | ${s.alive} | ${s.confident} | ${s.labels
            .slice(0, 5)
            .map(([l, c]) => `${l} (${c})`)
            .join(', ')} |`,
      ),
      '',
    );
  }

  const transcoders = readRecord(
    out,
    TRANSCODER_STAGE_FILES.transcoders.record,
    readTranscoderRecord,
  );
  if (transcoders) md.push(...transcoderSection('transcoders', transcoders));
  const clt = readRecord(out, TRANSCODER_STAGE_FILES.clt.record, readTranscoderRecord);
  if (clt) md.push(...transcoderSection('clt', clt));

  const total = folderBytes(out);
  md.push('## Files', '', `Total size of this folder: ${mb(total)}.`, '');
  const file = path.join(out, 'TRAINING.md');
  fs.writeFileSync(file, md.join('\n'));
  return file;
}

/** The per-layer transcoders' or the CLT's section, from training/transcoders.json or clt.json. */
function transcoderSection(stage: TranscoderStage, r: TranscoderRecordFile): string[] {
  const s = r.stats;
  const dir = TRANSCODER_STAGE_FILES[stage].dir;
  const clt = stage === 'clt';
  const time =
    r.seconds === null
      ? ''
      : ` Its training run took ${minutes(r.seconds)} of wall time on the shared 2-core machine ` +
        '(collecting the MLP pairs, training, and the evaluation below).';
  return [
    clt ? '## Cross-layer transcoder' : '## Per-layer transcoders',
    '',
    (clt
      ? `\`${dir}/\` (circuit-tracer's \`cross_layer_transcoder\` layout: \`config.yaml\`, \`W_enc_i\` / \`W_dec_i\` ` +
        "files): layer l's features read the MLP input of layer l and write to the MLP outputs of every " +
        "layer l' ≥ l, all layers trained together (loss = the sum over layers of each MLP output's squared error). "
      : `\`${dir}/\` (circuit-tracer's \`transcoder_set\` layout: \`config.yaml\`, \`layer_i.safetensors\`): ` +
        "one transcoder per layer, reading the MLP's normalised input and predicting its output. ") +
      `Trained by \`npm run organism -- --stage ${stage}\` (the same as \`${r.command}\`).${time} ` +
      `Held out: the corpus's last ${r.settings.heldOut} documents, ${s.tokens.toLocaleString('en-US')} tokens. ` +
      (clt
        ? "FVE of each layer's MLP output (from the features of layers 0..l), L0 and dead of that layer's own features:"
        : "FVE of each layer's MLP output, L0 and dead features of its transcoder:"),
    '',
    '| layer | FVE | L0 | dead |',
    '| --- | --- | --- | --- |',
    ...s.layers.map(
      (l) => `| ${l.layer} | ${fixed(l.fve, 4)} | ${fixed(l.l0, 1)} | ${pct(l.dead)} |`,
    ),
    '',
    `Next-token loss: clean ${fixed(s.lossClean, 4)}, every MLP replaced by the ${clt ? 'CLT' : 'transcoders'} ` +
      `${fixed(s.lossReplaced, 4)}, every MLP zeroed ${fixed(s.lossZeroMlps, 4)}.`,
    '',
    `Ground-truth labels (\`sfc transcoder label\`, written to \`${dir}/labels.jsonl\`; ` +
      `scored on ${(r.labels.tokens / 1e3).toFixed(0)}k tokens of annotated grammar text, seed ${LABEL_SEED}): ${r.labels.confident} ` +
      `confident at F1 ≥ ${r.labels.minF1} of ${r.labels.alive} alive features (of ${r.labels.features}); most common: ` +
      `${r.labels.top.map(([l, c]) => `\`${l}\` (${c})`).join(', ')}.`,
    '',
  ];
}

/** Several standalone SVG charts one above the other, as one SVG. */
function stackSvgs(svgs: string[]): string {
  let y = 0;
  let width = 0;
  const inner: string[] = [];
  for (const svg of svgs) {
    const w = Number(/width="(\d+)"/.exec(svg)![1]);
    const h = Number(/height="(\d+)"/.exec(svg)![1]);
    inner.push(svg.replace('<svg ', `<svg y="${y}" `));
    y += h;
    width = Math.max(width, w);
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">\n` +
    inner.join('') +
    '</svg>\n'
  );
}
