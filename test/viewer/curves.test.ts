// The curves panel in headless Chromium: with evaluation.json's score of the saved circuit at
// every layer (allLayers) it shows both scores and how many nodes the default leaves out;
// without it, the one line it always showed.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { renderReportHtml } from '../../src/viewer/html.ts';
import { collectReportData, type ReportData } from '../../src/viewer/inputs.ts';
import { CHROMIUM, haveChromium, launchChromium, openReport } from '../helpers/chromium.ts';

const FIXTURE = 'test/fixtures/viewer/small';

/** What evaluation.json adds when it scores the circuit with every layer as well. */
interface AllLayersFields {
  allLayers: { nodes: number; faithfulness: number | null; completeness: number | null } | null;
  nodesBelowStart: number;
}

describe(
  'curves panel in headless Chromium',
  { skip: !haveChromium && `${CHROMIUM} is absent` },
  () => {
    let browser: Browser;
    let dir: string;
    before(async () => {
      browser = await launchChromium();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-curves-'));
    });
    after(async () => {
      await browser?.close();
      if (dir) fs.rmSync(dir, { recursive: true });
    });

    async function curvesText(data: ReportData, name: string): Promise<string> {
      const file = path.join(dir, name);
      fs.writeFileSync(file, renderReportHtml(data));
      const problems: string[] = [];
      const page = await openReport(browser, file, problems, []);
      const text = await page.locator('#curves').innerText();
      assert.deepEqual(problems, []);
      await page.close();
      return text;
    }

    test('both scores and the nodes left out, when evaluation.json has them', async () => {
      const data = collectReportData(FIXTURE);
      const below = data.circuit.nodes.filter((n) => n.layer < 1).length;
      assert.equal(below, 9, 'the fixture: 3 embed and 6 layer-0 nodes');
      const extra: AllLayersFields = {
        allLayers: { nodes: 15, faithfulness: 0.97, completeness: 0.02 },
        nodesBelowStart: below,
      };
      Object.assign(data.evaluation!, { startLayer: 1 }, extra);
      const text = await curvesText(data, 'all-layers.html');
      // Rows: the saved score (layers ≥ 1, the fixture's 12 nodes) and every layer.
      assert.match(text, /layers ≥ 1\s+12\s+0\.89\s+0\.11/);
      assert.match(text, /every layer\s+15\s+0\.97\s+0\.02/);
      assert.match(text, /9 circuit nodes below layer 1 are left out by the default/);
    });

    test('without them, the saved score as before', async () => {
      const data = collectReportData(FIXTURE);
      const text = await curvesText(data, 'plain.html');
      assert.match(text, /circuit as saved: 12 nodes · faithfulness 0\.89 · completeness 0\.11/);
      assert.doesNotMatch(text, /every layer|left out/);
    });
  },
);
