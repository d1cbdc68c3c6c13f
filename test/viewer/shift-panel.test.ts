// The report's SHIFT panel: shift.json is read and validated (a malformed one is an error naming
// the file, an absent one changes nothing), and in headless Chromium the panel shows the results
// table, starts with the judge's choice, counts the checked features and downloads exactly them
// as the {"features": [...]} file `sfc shift --features` reads.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { register } from '../../src/cli/commands/report.ts';
import { collectReportData, inputStamp } from '../../src/viewer/inputs.ts';
import { buildReport } from '../../src/viewer/report.ts';
import { readShift } from '../../src/shift/file.ts';
import { serveReport } from '../../src/viewer/server.ts';
import { browserSuiteSkip, launchChromium, openReport } from '../helpers/chromium.ts';
import { runCommand } from '../helpers/run-command.ts';

const FIXTURE = 'test/fixtures/viewer/shift';
const PLAIN = 'test/fixtures/viewer/small';
const ARTIFACTS = 'test-artifacts';

function copyFixture(from = FIXTURE): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-shift-panel-'));
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  return dir;
}

/** The fixture's shift.json, edited by `edit`, written into a fresh copy of the fixture. */
function withShift(edit: (json: Record<string, unknown>) => void): string {
  const dir = copyFixture();
  const file = path.join(dir, 'shift.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
  return dir;
}

describe('shift.json in the report data', () => {
  test('a valid shift.json is read, with labels for its features', () => {
    const data = collectReportData(FIXTURE);
    const shift = data.shift!;
    assert.equal(data.files.shift, path.join(FIXTURE, 'shift.json'));
    assert.equal(shift.task, 'data/bios');
    assert.equal(shift.judge, 'auto');
    assert.deepEqual(shift.genders, ['female', 'male']);
    assert.equal(shift.features.length, 6);
    assert.deepEqual(shift.features[0], {
      id: 'embed/3',
      site: 'embed',
      feature: 3,
      effect: 0.12,
      spurious: true,
      note: 'female 81%',
    });
    assert.equal(shift.features[2].note, null);
    assert.equal(shift.features[3].note, undefined);
    assert.equal(shift.rows.length, 4);
    assert.equal(shift.rows[3].worst_group, null);
    assert.equal('extra' in shift, false, 'unknown keys are accepted and dropped');
    assert.equal(data.labels['resid_0/12'].label, 'in_object_rc');
    assert.ok(!data.warnings.some((w) => /shift\.json/.test(w)), data.warnings.join('\n'));
  });

  test('no shift.json: no panel data and the page has none', () => {
    const data = collectReportData(PLAIN);
    assert.equal(data.shift, null);
    assert.equal(data.files.shift, null);
    const dir = copyFixture(PLAIN);
    try {
      const html = fs.readFileSync(buildReport(dir), 'utf8');
      assert.match(html, /"shift":null/);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('a malformed shift.json is an error naming the file', () => {
    const cases: [(j: Record<string, unknown>) => void, RegExp][] = [
      [
        (j) => ((j.features as Record<string, unknown>[])[1].spurious = 'yes'),
        /shift\.json: not a shift results file \(features\.1\.spurious: /,
      ],
      [(j) => delete j.rows, /shift\.json: not a shift results file \(rows: /],
      [(j) => (j.version = 2), /shift\.json: not a shift results file \(version: /],
      [
        (j) => ((j.rows as Record<string, unknown>[])[0].label = 52.5),
        /shift\.json: not a shift results file \(rows\.0\.label: /,
      ],
      [
        (j) => ((j.features as Record<string, unknown>[])[0].id = 'embed/4'),
        /shift\.json: features\.0: id "embed\/4" should be "embed\/3"/,
      ],
      [
        (j) => (j.features as unknown[]).push((j.features as unknown[])[0]),
        /shift\.json: features\.6: duplicate feature embed\/3/,
      ],
    ];
    for (const [edit, message] of cases) {
      const dir = withShift(edit);
      try {
        assert.throws(() => collectReportData(dir), message);
        assert.throws(() => buildReport(dir), message);
      } finally {
        fs.rmSync(dir, { recursive: true });
      }
    }
    const dir = copyFixture();
    try {
      const file = path.join(dir, 'shift.json');
      fs.writeFileSync(file, '{"version": 1,');
      assert.throws(() => readShift(file), /shift\.json: not valid JSON/);
      assert.throws(
        () => collectReportData(dir, { shift: path.join(dir, 'nope.json') }),
        /nope\.json: no such file/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('features missing from the circuit are a warning; the file is part of the stamp', () => {
    const dir = withShift((j) =>
      (j.features as unknown[]).push({
        id: 'resid_1/77',
        site: 'resid_1',
        feature: 77,
        effect: 0.01,
        spurious: false,
      }),
    );
    try {
      const data = collectReportData(dir);
      assert.ok(
        data.warnings.some((w) =>
          /shift\.json: 1 of its 7 features are not in .*circuit\.json/.test(w),
        ),
        data.warnings.join('\n'),
      );
      const before = inputStamp(dir);
      fs.appendFileSync(path.join(dir, 'shift.json'), '\n\n');
      assert.notEqual(inputStamp(dir), before);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('sfc report --shift FILE reads another file', async () => {
    const dir = copyFixture(PLAIN);
    try {
      const out = path.join(dir, 'page.html');
      await runCommand(register, [
        'report',
        dir,
        '--shift',
        path.join(FIXTURE, 'shift.json'),
        '--out',
        out,
      ]);
      assert.match(fs.readFileSync(out, 'utf8'), /"task":"data\/bios"/);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe(
  'the SHIFT panel in headless Chromium',
  { skip: browserSuiteSkip('the SHIFT panel in headless Chromium') },
  () => {
    let browser: Browser;
    let page: Page;
    let dir: string;
    const problems: string[] = [];
    const requests: string[] = [];
    const LISTED = ['resid_0/12', 'mlp_0/2', 'attn_0/5', 'embed/3', 'resid_1/9', 'resid_0/7'];

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

    const checked = () =>
      page
        .locator('#shift .shift-list input[type="checkbox"]')
        .evaluateAll((boxes: HTMLInputElement[]) => boxes.map((b) => b.checked));
    const downloaded = async (): Promise<unknown> => {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('#shift-download').click(),
      ]);
      assert.equal(download.suggestedFilename(), 'features.json');
      return JSON.parse(fs.readFileSync((await download.path())!, 'utf8'));
    };

    test('the results table shows accuracies as percentages, descriptions as tooltips', async () => {
      assert.equal(await page.locator('#shift').isVisible(), true);
      const rows = page.locator('#shift .shift-table tbody tr');
      assert.equal(await rows.count(), 4);
      const cells = await rows.evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
      );
      assert.deepEqual(cells, [
        ['original', '0', '52.5%', '97.5%', '4.0%'],
        ['SHIFT', '3', '60.0%', '80.0%', '30.0%'],
        ['SHIFT + retrain', '3', '88.9%', '51.2%', '85.3%'],
        ['random', '3', '53.0%', '97.0%', 'n/a'],
      ]);
      assert.equal(
        await rows.first().getAttribute('title'),
        'probe trained on the ambiguous split',
      );
      assert.match(await page.locator('#shift .shift-meta').innerText(), /task data\/bios/);
    });

    test('candidates are listed by |effect| and start checked as the judge chose', async () => {
      const ids = await page
        .locator('#shift .shift-feature')
        .evaluateAll((trs: HTMLElement[]) => trs.map((tr) => tr.dataset.id));
      assert.deepEqual(ids, LISTED);
      assert.deepEqual(await checked(), [false, true, true, true, false, false]);
      assert.equal(await page.locator('#shift-count').innerText(), '3 features judged spurious');
      const first = await page.locator('#shift .shift-feature').first().innerText();
      assert.match(first, /resid_0\/12[\s\S]*in_object_rc[\s\S]*-0\.4[\s\S]*nurse 70% <b>/);
      assert.equal(
        await page.locator('#shift-command').inputValue(),
        'sfc shift --task data/bios --features features.json --retrain',
      );
    });

    test('checking and unchecking updates the count; the download holds the checked ids', async () => {
      assert.deepEqual(await downloaded(), { features: ['mlp_0/2', 'attn_0/5', 'embed/3'] });
      await page.locator('#shift input[data-id="embed/3"]').uncheck();
      assert.equal(await page.locator('#shift-count').innerText(), '2 features judged spurious');
      await page.locator('#shift input[data-id="resid_0/7"]').check();
      await page.locator('#shift input[data-id="resid_0/12"]').check();
      assert.equal(await page.locator('#shift-count').innerText(), '4 features judged spurious');
      // In list order, not in the order they were checked.
      assert.deepEqual(await downloaded(), {
        features: ['resid_0/12', 'mlp_0/2', 'attn_0/5', 'resid_0/7'],
      });
      await page.locator('#shift-none').click();
      assert.equal(await page.locator('#shift-count').innerText(), '0 features judged spurious');
      assert.deepEqual(await checked(), [false, false, false, false, false, false]);
      assert.deepEqual(await downloaded(), { features: [] });
      await page.locator('#shift-all').click();
      assert.equal(await page.locator('#shift-count').innerText(), '6 features judged spurious');
      assert.deepEqual(await downloaded(), { features: LISTED });
      await page.locator('#shift input[data-id="resid_1/9"]').uncheck();
      assert.equal(await page.locator('#shift-count').innerText(), '5 features judged spurious');
    });

    test('clicking a feature id selects it in the graph and opens its dashboard', async () => {
      await page.locator('#shift button.shift-id[data-id="resid_1/9"]').click();
      assert.equal(
        await page.locator('#graph .node.selected').getAttribute('data-id'),
        'resid_1/9',
      );
      assert.match(await page.locator('#dashboard').innerText(), /resid_1 \/ 9[\s\S]*pending_pl/);
      assert.equal(
        await page.locator('#shift .shift-feature.selected').getAttribute('data-id'),
        'resid_1/9',
      );
      // Selecting does not touch the choices.
      assert.equal(await page.locator('#shift-count').innerText(), '5 features judged spurious');
    });

    test('no console errors, no network; screenshot', async () => {
      await page.locator('#dash-close').click();
      await page.locator('aside:not(#ag-detail)').evaluate((el) => el.scrollTo(0, 0));
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'report-shift.png') });
      assert.deepEqual(problems, []);
      assert.deepEqual(
        requests.filter((u) => !/^(file|data|blob):/.test(u)),
        [],
      );
    });

    test('sfc view: choices survive a reload, a new judgement resets them', async () => {
      const live = copyFixture();
      const server = await serveReport(live, { port: 0 });
      const p = await browser.newPage();
      const count = () => p.locator('#shift-count').innerText();
      try {
        await p.goto(server.url);
        await p.waitForSelector('body[data-ready="1"]');
        await p.locator('#shift input[data-id="embed/3"]').uncheck();
        assert.equal(await count(), '2 features judged spurious');
        // Another circuit, same candidates: the person's choice stays.
        const circuitFile = path.join(live, 'circuit.json');
        const circuit = JSON.parse(fs.readFileSync(circuitFile, 'utf8')) as { edges: unknown[] };
        circuit.edges = [];
        fs.writeFileSync(circuitFile, JSON.stringify(circuit));
        await p.waitForFunction(
          () => document.querySelectorAll('#graph .edge').length === 0,
          null,
          {
            timeout: 10000,
          },
        );
        assert.equal(await count(), '2 features judged spurious');
        // A new shift.json with another judgement starts from it.
        const shiftFile = path.join(live, 'shift.json');
        const shift = JSON.parse(fs.readFileSync(shiftFile, 'utf8')) as {
          features: { spurious: boolean }[];
        };
        for (const f of shift.features) f.spurious = true;
        fs.writeFileSync(shiftFile, JSON.stringify(shift));
        await p.waitForFunction(
          () =>
            document.getElementById('shift-count')?.textContent === '6 features judged spurious',
          null,
          { timeout: 10000 },
        );
      } finally {
        await p.close();
        await server.close();
        fs.rmSync(live, { recursive: true });
      }
    });

    test('without shift.json the panel stays hidden', async () => {
      const plain = copyFixture(PLAIN);
      const p = await browser.newPage();
      try {
        const errors: string[] = [];
        p.on('pageerror', (e) => errors.push(e.message));
        await p.goto(pathToFileURL(buildReport(plain)).href);
        await p.waitForSelector('body[data-ready="1"]');
        assert.equal(await p.locator('#shift').isVisible(), false);
        assert.equal(await p.locator('#shift *').count(), 0);
        assert.deepEqual(errors, []);
      } finally {
        await p.close();
        fs.rmSync(plain, { recursive: true });
      }
    });
  },
);
