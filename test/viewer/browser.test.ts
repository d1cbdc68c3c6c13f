// The report in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// it loads from disk without errors or network, shows the hand-made circuit's nodes, prunes with
// the sliders, highlights, searches, opens dashboards, exports, and stays usable at 1,000 nodes.
// A screenshot lands in test-artifacts/report.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { nodeId, writeCircuit, type Circuit, type CircuitNode } from '../../src/circuit/circuit.ts';
import { siteNames } from '../../src/model/sites.ts';
import { Rng } from '../../src/random.ts';
import { buildReport } from '../../src/viewer/report.ts';
import { serveReport } from '../../src/viewer/server.ts';
import { browserSuiteSkip, launchChromium, openReport } from '../helpers/chromium.ts';

const FIXTURE = 'test/fixtures/viewer/small';
const ARTIFACTS = 'test-artifacts';

/** The page's slider mapping: 0 shows everything, else log-spaced between the smallest and largest |value|. */
function sliderThreshold(pos: number, values: number[]): number {
  const abs = values.map(Math.abs).filter((v) => v > 0);
  const lo = Math.log10(Math.min(...abs));
  const hi = Math.log10(Math.max(...abs));
  if (pos <= 0) return 0;
  return pos >= 1000 ? Math.max(...abs) : Math.pow(10, lo + ((hi - lo) * pos) / 1000);
}

function copyFixture(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-browser-'));
  for (const f of fs.readdirSync(FIXTURE))
    fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
  return dir;
}

/** A synthetic per-position circuit of `count` nodes over 6 layers and 8 tokens, ~3 edges per node. */
function bigCircuit(count: number, seed: number): Circuit {
  const rng = new Rng(seed);
  const sites = siteNames(6);
  const T = 8;
  const nodes: CircuitNode[] = [];
  const seen = new Set<string>();
  while (nodes.length < count) {
    const s = rng.int(sites.length);
    const site = sites[s];
    const error = rng.next() < 0.04;
    const feature = error ? null : rng.int(4096);
    const position = rng.int(T);
    const id = nodeId(site, feature, position);
    if (seen.has(id)) continue;
    seen.add(id);
    const effect = (rng.next() < 0.7 ? 1 : -1) * Math.exp(-2.3 - 1.2 * Math.abs(rng.normal()));
    const layer = site === 'embed' ? -1 : Number(site.split('_')[1]);
    nodes.push({ id, site, layer, kind: error ? 'error' : 'feature', feature, position, effect });
  }
  const index = (n: CircuitNode) => sites.indexOf(n.site);
  const edges: Circuit['edges'] = [];
  for (const target of nodes) {
    const upstream = nodes.filter(
      (n) => index(n) < index(target) && n.position! <= target.position!,
    );
    for (let k = 0; k < 3 && upstream.length > 0; k++)
      edges.push({ source: rng.pick(upstream).id, target: target.id, weight: 0.3 * rng.normal() });
  }
  for (const n of nodes)
    if (n.site === 'resid_5') edges.push({ source: n.id, target: 'y', weight: n.effect });
  return {
    version: 1,
    model: 'synthetic',
    saes: 'synthetic',
    data: 'synthetic.jsonl',
    method: 'ig',
    steps: 10,
    aggregation: 'none',
    examples: 100,
    node_threshold: 0,
    edge_threshold: 0,
    sites,
    tokens: ['The', ' teachers', ' that', ' the', ' guard', ' likes', ' near', ' the'],
    metric: { clean: -1, patch: 1 },
    nodes,
    edges,
  };
}

describe(
  'report in headless Chromium',
  { skip: browserSuiteSkip('report in headless Chromium') },
  () => {
    let browser: Browser;
    let dir: string;
    let page: Page;
    const problems: string[] = [];
    const requests: string[] = [];
    const circuit = JSON.parse(
      fs.readFileSync(path.join(FIXTURE, 'circuit.json'), 'utf8'),
    ) as Circuit;
    const effects = circuit.nodes.map((n) => n.effect);

    before(async () => {
      browser = await launchChromium();
      dir = copyFixture();
      const file = buildReport(dir);
      page = await openReport(browser, file, problems, requests);
    });

    after(async () => {
      await browser?.close();
      if (dir) fs.rmSync(dir, { recursive: true });
    });

    const count = (selector: string) => page.locator(selector).count();
    // For counts after a click: wait for the redraw rather than reading the DOM mid-update.
    const settledCount = async (selector: string, expected: number) => {
      await page
        .waitForFunction(
          ([sel, n]) => document.querySelectorAll(sel).length === n,
          [selector, expected] as const,
          { timeout: 5000 },
        )
        .catch(() => undefined);
      return count(selector);
    };
    const setSlider = async (id: string, value: number) => {
      await page.locator(`#${id}`).fill(String(value));
      await page.waitForFunction(
        ([sel, v]) => (document.querySelector(sel) as HTMLInputElement).value === v,
        [`#${id}`, String(value)] as const,
      );
      // Redraws wait for the next animation frame.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    };

    test('loads from disk with no console errors and no network', async () => {
      assert.deepEqual(problems, []);
      const foreign = requests.filter((u) => !/^(file|data|blob):/.test(u));
      assert.deepEqual(foreign, [], 'only the file itself');
      assert.match(await page.locator('#title').innerText(), /rc_test\.jsonl/);
    });

    test('the graph shows every node and edge of the circuit', async () => {
      assert.equal(await count('#graph .node'), 15);
      assert.equal(await count('#graph .node.feature'), 12);
      assert.equal(await count('#graph .node.error'), 3);
      assert.equal(await count('#graph .edge'), 19);
      assert.equal(await count('#graph .metric'), 1);
      assert.match(await page.locator('#counts').innerText(), /15 of 15 nodes · 19 of 19 edges/);
      // Token strings head the columns.
      const heads = await page.locator('#graph .col-head').allTextContents();
      assert.deepEqual(heads, ['The', ' teacher', ' that', ' the', ' guards']);
      // Rows by site: y on top, then the last site down to the embedding.
      const rows = await page.locator('#graph .row-label').allTextContents();
      assert.deepEqual(rows, [
        'y (metric)',
        'resid_1',
        'mlp_1',
        'attn_1',
        'resid_0',
        'mlp_0',
        'attn_0',
        'embed',
      ]);
    });

    test('the node slider prunes nodes and their edges', async () => {
      for (const pos of [500, 800, 1000]) {
        await setSlider('node-slider', pos);
        const thr = sliderThreshold(pos, effects);
        const kept = new Set(
          circuit.nodes.filter((n) => Math.abs(n.effect) >= thr).map((n) => n.id),
        );
        const edges = circuit.edges.filter(
          (e) => kept.has(e.source) && (e.target === 'y' || kept.has(e.target)),
        );
        assert.ok(kept.size < 15 && kept.size >= 1);
        assert.equal(await count('#graph .node'), kept.size, `slider ${pos}`);
        assert.equal(await count('#graph .edge'), edges.length, `slider ${pos} edges`);
      }
      assert.equal(await count('#graph .node'), 1, 'only the strongest node at the right end');
      // While dragging (input events only) nodes are hidden in place; releasing lays them out anew.
      await setSlider('node-slider', 0);
      await page.locator('#node-slider').evaluate((el: HTMLInputElement) => {
        el.value = '500';
        el.dispatchEvent(new Event('input'));
      });
      const thr = sliderThreshold(500, effects);
      const kept = circuit.nodes.filter((n) => Math.abs(n.effect) >= thr).length;
      assert.equal(await count('#graph .node:not(.gone)'), kept);
      assert.equal(await count('#graph .node'), 15, 'hidden, not yet removed');
      assert.match(await page.locator('#counts').innerText(), new RegExp(`^${kept} of 15 nodes`));
      await page.locator('#node-slider').dispatchEvent('change');
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
      assert.equal(await count('#graph .node'), kept);
      await setSlider('node-slider', 0);
      assert.equal(await count('#graph .node'), 15);
      await page.locator('#show-errors').uncheck();
      assert.equal(await settledCount('#graph .node', 12), 12);
      await page.locator('#show-errors').check();
      assert.equal(await settledCount('#graph .node', 15), 15);
    });

    test('the edge slider prunes edges only', async () => {
      await setSlider('edge-slider', 600);
      const thr = sliderThreshold(
        600,
        circuit.edges.map((e) => e.weight),
      );
      const expected = circuit.edges.filter((e) => Math.abs(e.weight) >= thr).length;
      assert.ok(expected < 19);
      assert.equal(await count('#graph .edge'), expected);
      assert.equal(await count('#graph .node'), 15);
      await setSlider('edge-slider', 0);
      assert.equal(await count('#graph .edge'), 19);
    });

    test('hovering a node highlights its edges', async () => {
      await page.locator('#graph .node[data-id="resid_0/12@4"]').hover();
      const own = circuit.edges.filter(
        (e) => e.source === 'resid_0/12@4' || e.target === 'resid_0/12@4',
      );
      assert.equal(await count('#graph svg.focus'), 1);
      assert.equal(await count('#graph .edge.on'), own.length);
      assert.match(await page.locator('#tooltip').innerText(), /resid_0\/12@4[\s\S]*in_object_rc/);
      await page.mouse.move(5, 5);
      assert.equal(await count('#graph svg.focus'), 0);
    });

    test('search by site, feature or label', async () => {
      await page.locator('#search').fill('pending_sg');
      assert.equal(await count('#graph .node.match'), 3);
      await page.locator('#search').fill('resid_0/');
      assert.equal(await count('#graph .node.match'), 3);
      assert.match(await page.locator('#search-count').innerText(), /3 matches/);
      await page.locator('#search').fill('');
      assert.equal(await count('#graph .node.match'), 0);
    });

    test('clicking a feature opens its dashboard with its contexts', async () => {
      assert.equal(await page.locator('#dashboard').isVisible(), false);
      await page.locator('#graph .node[data-id="resid_1/0@4"]').click();
      const panel = page.locator('#dashboard');
      assert.equal(await panel.isVisible(), true);
      const text = await panel.innerText();
      assert.match(text, /resid_1 \/ 0/);
      assert.match(text, /pending_sg/);
      assert.match(text, /ground truth/);
      assert.equal(await panel.locator('.ctx').count(), 2);
      assert.match(
        await panel.locator('.ctx').first().innerText(),
        /The teacher that the guards like/,
      );
      assert.equal(await panel.locator('.ctx .tok.peak').first().innerText(), ' guards');
      assert.match(text, /promotes[\s\S]*is/);
      assert.equal(await count('#graph .node.selected'), 1);

      await page.locator('#graph .node[data-id="attn_1/ε@4"]').click();
      assert.match(await panel.innerText(), /error node/);
      await page.locator('#graph .node[data-id="mlp_1/6@4"]').click();
      assert.match(await panel.innerText(), /no label[\s\S]*No dashboard was computed/);
      await page.locator('#dash-close').click();
      assert.equal(await panel.isVisible(), false);
    });

    test('export the current view as SVG and PNG', async () => {
      await setSlider('node-slider', 500);
      const shown = await count('#graph .node');
      const [svgDownload] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('#export-svg').click(),
      ]);
      const svg = fs.readFileSync((await svgDownload.path())!, 'utf8');
      assert.equal(svgDownload.suggestedFilename(), 'circuit.svg');
      assert.match(svg, /^<\?xml/);
      assert.equal(svg.match(/class="node /g)!.length, shown);
      const [pngDownload] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('#export-png').click(),
      ]);
      const png = fs.readFileSync((await pngDownload.path())!);
      assert.equal(pngDownload.suggestedFilename(), 'circuit.png');
      assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
      await setSlider('node-slider', 0);
    });

    test('screenshot for a look', async () => {
      await page.locator('#graph .node[data-id="resid_1/0@4"]').click();
      await page.mouse.move(5, 5);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'report.png') });
      assert.deepEqual(problems, []);
    });

    test('a 1,000-node circuit renders and re-prunes', async () => {
      const big = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-big-'));
      try {
        const c = bigCircuit(1000, 7);
        writeCircuit(big, c);
        const file = buildReport(big);
        const p = await browser.newPage({ viewport: { width: 1440, height: 900 } });
        const errors: string[] = [];
        p.on('pageerror', (e) => errors.push(e.message));
        await p.goto(pathToFileURL(file).href);
        await p.waitForSelector('body[data-ready="1"]');
        assert.equal(await p.locator('#graph .node').count(), 1000);
        assert.equal(await p.locator('#graph .edge').count(), c.edges.length);
        await p.locator('#node-slider').fill('400');
        const thr = sliderThreshold(
          400,
          c.nodes.map((n) => n.effect),
        );
        const kept = c.nodes.filter((n) => Math.abs(n.effect) >= thr).length;
        await p.waitForFunction(
          (k) => document.querySelectorAll('#graph .node').length === k,
          kept,
        );
        assert.ok(kept < 1000 && kept > 0);
        await p.locator('#node-slider').fill('0');
        await p.waitForFunction(() => document.querySelectorAll('#graph .node').length === 1000);
        await p.screenshot({ path: path.join(ARTIFACTS, 'report-1000.png') });
        assert.deepEqual(errors, []);
        await p.close();
      } finally {
        fs.rmSync(big, { recursive: true });
      }
    });

    test('a circuit summed over positions has one column', async () => {
      const sum = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-sum-'));
      try {
        const strip = (id: string) => id.replace(/@\d+$/, '');
        writeCircuit(sum, {
          ...circuit,
          aggregation: 'sum',
          nodes: circuit.nodes.map((n) => ({ ...n, id: strip(n.id), position: null })),
          edges: circuit.edges.map((e) => ({
            ...e,
            source: strip(e.source),
            target: strip(e.target),
          })),
        });
        const p = await browser.newPage({ viewport: { width: 1200, height: 800 } });
        const errors: string[] = [];
        p.on('pageerror', (e) => errors.push(e.message));
        await p.goto(pathToFileURL(buildReport(sum)).href);
        await p.waitForSelector('body[data-ready="1"]');
        assert.equal(await p.locator('#graph .node').count(), 15);
        assert.deepEqual(await p.locator('#graph .col-head').allTextContents(), [
          'all tokens (summed)',
        ]);
        await p.screenshot({ path: path.join(ARTIFACTS, 'report-sum.png') });
        assert.deepEqual(errors, []);
        await p.close();
      } finally {
        fs.rmSync(sum, { recursive: true });
      }
    });

    test('a nodes-only circuit of a single-input task has no metric row', async () => {
      const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-bare-'));
      try {
        writeCircuit(bare, { ...circuit, edges: [], metric: { clean: 1.5, patch: null } });
        const p = await browser.newPage();
        const errors: string[] = [];
        p.on('pageerror', (e) => errors.push(e.message));
        await p.goto(pathToFileURL(buildReport(bare)).href);
        await p.waitForSelector('body[data-ready="1"]');
        assert.equal(await p.locator('#graph .node').count(), 15);
        assert.equal(await p.locator('#graph .metric').count(), 0);
        assert.equal((await p.locator('#graph .row-label').allTextContents())[0], 'resid_1');
        assert.match(await p.locator('#curves').innerText(), /No evaluation\.json/);
        await p.locator('#edge-slider').fill('500');
        assert.equal(await p.locator('#graph .edge').count(), 0);
        assert.deepEqual(errors, []);
        await p.close();
      } finally {
        fs.rmSync(bare, { recursive: true });
      }
    });

    test('sfc view: the served page reloads its data when circuit.json changes', async () => {
      const live = copyFixture();
      const server = await serveReport(live, { port: 0 });
      const p = await browser.newPage();
      try {
        await p.goto(server.url);
        await p.waitForSelector('body[data-ready="1"]');
        assert.equal(await p.locator('#title .badge').innerText(), 'live');
        assert.equal(await p.locator('#graph .node').count(), 15);
        const c = JSON.parse(fs.readFileSync(path.join(live, 'circuit.json'), 'utf8')) as Circuit;
        c.nodes = c.nodes.filter((n) => n.site !== 'embed');
        c.edges = c.edges.filter((e) => !e.source.startsWith('embed'));
        writeCircuit(live, c);
        await p.waitForFunction(
          () => document.querySelectorAll('#graph .node').length === 12,
          null,
          {
            timeout: 10000,
          },
        );
      } finally {
        await p.close();
        await server.close();
        fs.rmSync(live, { recursive: true });
      }
    });
  },
);
