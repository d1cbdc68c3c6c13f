// The report with hostile files: every string a folder's files bring into the page (labels,
// tokens, titles, dashboard contexts, shift.json, evaluation.json) is shown as text, and
// evaluate's SVG plots are shown as images, never as markup, so nothing in a folder runs script
// in the report. Checked in headless Chromium: no element the files tried to inject exists, and
// `window.__pwned` (what every payload would set) stays undefined.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { collectReportData } from '../../src/viewer/inputs.ts';
import { buildReport } from '../../src/viewer/report.ts';
import { CHROMIUM, haveChromium, launchChromium, openReport } from '../helpers/chromium.ts';

const SMALL = 'test/fixtures/viewer/small';
const SHIFT = 'test/fixtures/viewer/shift';

/** Markup that, if parsed as HTML anywhere in the page, sets window.__pwned (and leaves an element). */
const payload = (where: string) =>
  `<img class="pwn" src="x" onerror="window.__pwned='${where}'"><b class="pwn">${where}</b>`;

/** An SVG that would run script if it were inlined into the page (onload and <script>). */
const HOSTILE_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" onload="window.__pwned='svg onload'">
<script>window.__pwned = 'svg script';</script>
<rect width="200" height="100" fill="#2166ac"/><text x="10" y="50">faithfulness</text>
</svg>`;

function copy(from: string, dir: string) {
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
}

function editJson(file: string, edit: (j: Record<string, unknown>) => void) {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j));
}

type Json = Record<string, unknown> & { [k: string]: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The small fixture plus shift.json, with a payload in every string the page shows. */
function hostileFolder(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-hostile-'));
  copy(SMALL, dir);
  fs.copyFileSync(path.join(SHIFT, 'shift.json'), path.join(dir, 'shift.json'));
  const labels = fs
    .readFileSync(path.join(dir, 'labels.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.stringify({ ...JSON.parse(l), label: payload('label') }));
  fs.writeFileSync(path.join(dir, 'labels.jsonl'), labels.join('\n') + '\n');
  editJson(path.join(dir, 'circuit.json'), (c: Json) => {
    c.tokens = c.tokens.map(() => payload('token'));
    c.model = payload('model');
    c.saes = payload('saes');
    c.data = payload('data');
  });
  editJson(path.join(dir, 'dashboards.json'), (d: Json) => {
    for (const k of Object.keys(d.vocab)) d.vocab[k] = payload('vocab');
    d.logit_lens = payload('logit lens');
  });
  editJson(path.join(dir, 'evaluation.json'), (e: Json) => {
    e.ablation = payload('ablation');
    for (const s of e.series) s.label = payload('series');
  });
  editJson(path.join(dir, 'shift.json'), (s: Json) => {
    s.task = payload('task');
    s.judge = payload('judge');
    s.command = payload('command');
    s.labels = [payload('shift label'), 'b'];
    for (const r of s.rows) {
      r.name = payload('row');
      r.description = payload('description');
    }
    for (const f of s.features) f.note = payload('note');
  });
  return dir;
}

test('a folder SVG plot reaches the page as a base64 data URL, never as markup', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-svg-'));
  try {
    copy(SMALL, dir);
    fs.rmSync(path.join(dir, 'evaluation.json'));
    fs.writeFileSync(path.join(dir, 'faithfulness.svg'), HOSTILE_SVG);
    const data = collectReportData(dir);
    const url = data.curveImages.faithfulness!;
    assert.match(url, /^data:image\/svg\+xml;base64,[A-Za-z0-9+/]+=*$/);
    assert.equal(Buffer.from(url.split(',')[1], 'base64').toString('utf8'), HOSTILE_SVG);
    assert.equal(data.curveImages.completeness, undefined, 'no completeness.svg');
    assert.doesNotMatch(fs.readFileSync(buildReport(dir), 'utf8'), /__pwned/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

describe(
  'hostile files in headless Chromium',
  { skip: !haveChromium && `${CHROMIUM} is absent` },
  () => {
    let browser: Browser;
    const dirs: string[] = [];
    before(async () => {
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      for (const d of dirs) fs.rmSync(d, { recursive: true });
    });

    const injected = (page: Page) =>
      page.evaluate(() => ({
        pwned: (window as unknown as { __pwned?: string }).__pwned,
        elements: document.querySelectorAll('.pwn').length,
      }));

    test('an SVG plot with onload and <script> is shown as an image and runs nothing', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-svg-'));
      dirs.push(dir);
      copy(SMALL, dir);
      fs.rmSync(path.join(dir, 'evaluation.json'));
      fs.writeFileSync(path.join(dir, 'faithfulness.svg'), HOSTILE_SVG);
      fs.writeFileSync(path.join(dir, 'completeness.svg'), HOSTILE_SVG.replace('faith', 'comple'));
      const problems: string[] = [];
      const page = await openReport(browser, buildReport(dir), problems, []);
      const images = page.locator('#curves img.curve-image');
      assert.equal(await images.count(), 2);
      // The images are decoded and drawn (an SVG in an <img> renders, without its script).
      await page.waitForFunction(() =>
        [...document.querySelectorAll<HTMLImageElement>('#curves img.curve-image')].every(
          (i) => i.complete && i.naturalWidth === 200,
        ),
      );
      assert.equal(await page.locator('#curves svg').count(), 0, 'no foreign SVG in the page');
      assert.deepEqual(await injected(page), { pwned: undefined, elements: 0 });
      assert.deepEqual(problems, []);
      await page.close();
    });

    test('payloads in labels, tokens, titles, dashboards, evaluation and shift.json stay text', async () => {
      const dir = hostileFolder();
      dirs.push(dir);
      const problems: string[] = [];
      const file = buildReport(dir, { title: payload('title') });
      const page = await openReport(browser, file, problems, []);
      assert.equal(await page.locator('#graph .node').count(), 15);
      // Hover shows the tooltip (label, token); a click opens the dashboard (label, contexts,
      // logit lens, vocabulary); the SHIFT panel and the curves are drawn from the start.
      await page.locator('#graph .node[data-id="resid_0/12@4"]').hover();
      assert.match(await page.locator('#tooltip').innerText(), /<img class="pwn"[^]*label/);
      await page.locator('#graph .node[data-id="resid_1/0@4"]').click();
      const dash = await page.locator('#dashboard').innerText();
      for (const where of ['label', 'vocab', 'logit lens'])
        assert.ok(dash.includes(payload(where)), `${where} shown as text in the dashboard`);
      assert.ok((await page.locator('#title').innerText()).includes(payload('title')));
      assert.ok((await page.locator('#meta').innerText()).includes(payload('model')));
      const shift = await page.locator('#shift').innerText();
      for (const where of ['task', 'judge', 'row', 'note', 'label'])
        assert.ok(shift.includes(payload(where)), `${where} shown as text in the SHIFT panel`);
      assert.ok((await page.locator('#curves').innerText()).includes(payload('series')));
      const heads = await page.locator('#graph .col-head').allTextContents();
      assert.ok(heads.length === 5 && heads.every((h) => h.startsWith('<img')), 'tokens as text');
      assert.deepEqual(await injected(page), { pwned: undefined, elements: 0 });
      assert.deepEqual(problems, []);
      await page.close();
    });
  },
);
