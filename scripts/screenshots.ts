// The report screenshots in README.md, made the way a user makes the reports: `sfc start`
// (what `npm start` runs, ending with `sfc report`) for the across-RC circuit, and
// `sfc shift --auto --retrain` then `sfc report` for the SHIFT panel; each report.html is then
// photographed in headless Chromium at the size the README's pictures have. The live panel is
// the across-RC report served by `sfc view --live`, its strongest last-token feature zeroed. The
// graph view is the same report's attribution graph (from `sfc graph` inside `sfc start`), its
// most influential feature clicked.
// Run: `npx tsx scripts/screenshots.ts [--out docs/images] [--only NAME.png]` (about 3 minutes
// on 2 cores).
// The reports stay in out/screenshots/ to be opened. Paths are given relative to the repository
// so that the page headers in the pictures do not show this checkout's location.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { CHROMIUM, haveChromium, launchChromium, openReport } from '../test/helpers/chromium.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL = ['--model', 'models/organism'];

interface Shot {
  png: string;
  report: string;
  viewport: { width: number; height: number };
  commands: string[][];
  /** Served by `sfc view --live` with a feature zeroed in the panel, not opened from disk. */
  live?: boolean;
  /** The report's attribution graph view instead of its circuit. */
  graph?: boolean;
}

const SHOTS: Shot[] = [
  {
    png: 'organism-rc-report.png',
    report: 'out/screenshots/rc',
    viewport: { width: 1600, height: 1000 },
    commands: [['start', ...MODEL, '--data', 'data', '--out', 'out/screenshots/rc']],
  },
  {
    png: 'organism-shift-report.png',
    report: 'out/screenshots/shift',
    viewport: { width: 1500, height: 1000 },
    commands: [
      [
        'shift',
        '--auto',
        '--retrain',
        ...MODEL,
        '--task',
        'data/bios',
        '--out',
        'out/screenshots/shift',
      ],
      ['report', 'out/screenshots/shift'],
    ],
  },
  {
    png: 'organism-live-panel.png',
    report: 'out/screenshots/rc',
    viewport: { width: 1600, height: 1000 },
    commands: [],
    live: true,
  },
  {
    png: 'organism-graph-report.png',
    report: 'out/screenshots/rc',
    viewport: { width: 1600, height: 900 },
    commands: [],
    graph: true,
  },
];

function fail(message: string): never {
  process.stderr.write(`screenshots: ${message}\n`);
  process.exit(1);
}

/** Runs the installed `sfc` command in the repository, its output shown as it goes. */
function sfc(args: string[]): void {
  process.stdout.write(`\n$ sfc ${args.join(' ')}\n`);
  const run = spawnSync(process.execPath, ['bin/sfc.js', ...args], { cwd: ROOT, stdio: 'inherit' });
  if (run.status !== 0) fail(`sfc ${args[0]} failed (exit ${run.status ?? run.signal})`);
}

/** `sfc view REPORT --live` in the background; resolves with its URL and a stop function. */
function serveLive(report: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(
    process.execPath,
    ['bin/sfc.js', 'view', report, '--live', ...MODEL, '--port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /at (http:\/\/\S+\/) with the live panel/.exec(out);
      if (m) resolve({ url: m[1], stop: () => child.kill() });
    });
    child.on('exit', (code) => reject(new Error(`sfc view --live exited (${code})`)));
  });
}

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/images' },
    only: { type: 'string' },
  },
});
const outDir = path.resolve(values.out!);
if (!haveChromium) fail(`${CHROMIUM} is missing: apt-get install chromium (or set SFC_CHROMIUM)`);
const shots = values.only ? SHOTS.filter((s) => s.png === values.only) : SHOTS;
if (shots.length === 0)
  fail(`--only ${values.only}: expected one of ${SHOTS.map((s) => s.png).join(', ')}`);

// A shot of a report made by another shot (the live panel) runs that one's commands if needed.
const made = new Set<string>();
for (const shot of shots) {
  const maker = shot.commands.length ? shot : SHOTS.find((s) => s.report === shot.report)!;
  if (made.has(maker.report)) continue;
  if (shot === maker || !fs.existsSync(path.join(ROOT, shot.report, 'report.html')))
    maker.commands.forEach(sfc);
  made.add(maker.report);
}

fs.mkdirSync(outDir, { recursive: true });
const browser = await launchChromium();
const wrote: string[] = [];
try {
  for (const { png, report, viewport, commands, live, graph } of shots) {
    if (live) {
      const file = path.join(outDir, png);
      await liveShot(report, viewport, file);
      wrote.push(
        `${path.relative(ROOT, file)} (${viewport.width}x${viewport.height}) from sfc view ${report} --live`,
      );
      continue;
    }
    const html = path.join(ROOT, report, 'report.html');
    const problems: string[] = [];
    // openReport returns once the page has drawn the graph and its panels (body[data-ready]).
    const page = await openReport(browser, html, problems, [], viewport);
    await page.evaluate(() => document.fonts.ready);
    if (graph) await showGraph(page, report);
    if (problems.length > 0) fail(`${html}: the page reported\n${problems.join('\n')}`);
    const file = path.join(outDir, png);
    await page.screenshot({ path: file });
    await page.close();
    const from = commands.length
      ? commands.map((c) => `sfc ${c.join(' ')}`).join(' && ')
      : 'the report another shot made';
    wrote.push(
      `${path.relative(ROOT, file)} (${viewport.width}x${viewport.height}) from ${report}/report.html (${from})`,
    );
  }
} finally {
  await browser.close();
}
process.stdout.write(`\n${wrote.map((w) => `wrote ${w}`).join('\n')}\n`);

/** The attribution graph view with its most influential feature (lowest cumulative influence) clicked. */
async function showGraph(page: Page, report: string): Promise<void> {
  const folder = path.join(ROOT, report, 'graphs');
  const name = fs
    .readdirSync(folder)
    .find((f) => f.endsWith('.json') && !f.endsWith('.graph.json'));
  if (!name) fail(`${folder}: no graph (sfc start runs sfc graph into it)`);
  const g = JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8')) as {
    nodes: { node_id: string; feature_type: string; influence?: number }[];
  };
  const top = g.nodes
    .filter((n) => n.feature_type === 'cross layer transcoder' && n.influence !== undefined)
    .sort((a, b) => a.influence! - b.influence!)[0];
  await page.click('#view-graph');
  await page.locator(`#ag-svg .ag-node[data-id="${top.node_id}"]`).click();
  await page.mouse.move(0, 0);
}

/** The live panel with the circuit's strongest last-token feature zeroed and the graph's changes. */
async function liveShot(report: string, viewport: Shot['viewport'], file: string): Promise<void> {
  const server = await serveLive(report);
  const page = await browser.newPage({ viewport });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  try {
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="1"]');
    const circuit = JSON.parse(
      fs.readFileSync(path.join(ROOT, report, 'circuit.json'), 'utf8'),
    ) as {
      nodes: { id: string; effect: number; kind: string; position: number | null }[];
    };
    const last = Math.max(...circuit.nodes.map((n) => n.position ?? 0));
    const strongest = circuit.nodes
      .filter((n) => n.kind === 'feature' && n.position === last)
      .sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect))[0];
    await page.locator(`#graph .node[data-id="${strongest.id}"]`).click();
    await page.fill('#iv-generate', '6');
    await page.click('#iv-run');
    await page.waitForFunction(
      () => {
        const acts = document.getElementById('iv-acts');
        return acts !== null && !acts.textContent!.includes('reading');
      },
      null,
      { timeout: 120000 },
    );
    if (!(await page.locator('#iv-error').isHidden()))
      fail(`the live panel reported: ${await page.locator('#iv-error').innerText()}`);
    if (problems.length > 0) fail(`the live page reported\n${problems.join('\n')}`);
    await page.evaluate(() => {
      document.querySelector('aside')!.scrollTop = 0;
      return document.fonts.ready;
    });
    await page.screenshot({ path: file });
  } finally {
    await page.close();
    server.stop();
  }
}
