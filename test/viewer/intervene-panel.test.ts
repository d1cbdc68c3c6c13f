// The live panel of `sfc view --live` in headless Chromium on the shipped organism: a circuit from
// `sfc discover` reported with `sfc report` in a temp folder, served by the real CLI process.
// What the page shows must be what `sfc intervene` computes (interveneOnPrompt, nodeActivations)
// for the same request, opened independently here.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { register as registerDiscover } from '../../src/cli/commands/discover.ts';
import { register as registerReport } from '../../src/cli/commands/report.ts';
import { readCircuit, type Circuit } from '../../src/circuit/circuit.ts';
import { defaultModelDir } from '../../src/model/load.ts';
import { openModel } from '../../src/model/load-family.ts';
import { openSaes } from '../../src/sae/library.ts';
import { parseIntervention, resolveInterventions } from '../../src/steer/intervention.ts';
import { interveneOnPrompt, nodeActivations } from '../../src/steer/run.ts';
import { browserSuiteSkip, launchChromium } from '../helpers/chromium.ts';
import { runCommand } from '../helpers/run-command.ts';

const MODEL = defaultModelDir();

/** Starts `sfc view DIR --live` as the user would and resolves with its URL. */
function startLiveView(dir: string, cache: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'view', dir, '--live', '--port', '0', '--cache', cache],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /at (http:\/\/\S+\/) with the live panel/.exec(out);
      if (m) resolve({ url: m[1], child });
    });
    child.on('exit', (code) => reject(new Error(`sfc view --live exited (${code}): ${err}`)));
  });
}

describe(
  'the live intervention panel in headless Chromium',
  { skip: browserSuiteSkip('live panel') },
  () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sfc-live-'));
    const out = path.join(tmp, 'out');
    let browser: Browser;
    let server: { url: string; child: ChildProcess };
    let page: Page;
    let circuit: Circuit;
    const problems: string[] = [];
    const failed: string[] = [];
    // The same engine, opened here: the truth the page is checked against.
    const { model, tokenizer } = openModel(MODEL, { tokenizer: true });
    const library = openSaes(path.join(MODEL, 'saes'), model.shape.numLayers, { model });
    const dictionary = (site: string) => library.get(site);
    const truth = (prompt: string, doText: string, generate: number) => {
      const ids = tokenizer!.encodePrompt(prompt, 'auto').ids;
      const ivs = resolveInterventions([parseIntervention(doText)], { model, dictionary });
      return {
        ids,
        ivs,
        outcome: interveneOnPrompt({ model, dictionary }, ids, ivs, { top: 10, generate }),
      };
    };

    before(async () => {
      const data = path.join(tmp, 'data.jsonl');
      const lines = fs.readFileSync('data/nounpp_test.jsonl', 'utf8').split('\n').slice(0, 12);
      fs.writeFileSync(data, lines.join('\n') + '\n');
      await runCommand(registerDiscover, [
        'discover',
        '--data',
        data,
        '--out',
        out,
        '--node-threshold',
        '0.1',
        '--edge-threshold',
        '0.05',
      ]);
      await runCommand(registerReport, ['report', out]);
      assert.ok(fs.existsSync(path.join(out, 'report.html')));
      circuit = readCircuit(out);
      server = await startLiveView(out, path.join(tmp, 'stats'));
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('response', (r) => {
        if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.goto(server.url);
      await page.waitForSelector('body[data-ready="1"]');
    });

    after(async () => {
      await browser?.close();
      server?.child.kill();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    const shownRows = () =>
      page.$$eval('#iv-result .iv-top tr[data-token-id]', (rows) =>
        rows.map((r) => ({
          id: Number((r as HTMLElement).dataset.tokenId),
          before: Number((r as HTMLElement).dataset.before),
          after: Number((r as HTMLElement).dataset.after),
          text: [
            r.querySelector('.p-before')!.textContent,
            r.querySelector('.p-after')!.textContent,
          ],
        })),
      );

    async function runAndWait(trigger: () => Promise<void>, expect: string) {
      await page.evaluate(() => (document.getElementById('iv-result')!.innerHTML = ''));
      await trigger();
      await page.waitForFunction(
        (text) => {
          const r = document.getElementById('iv-result')!;
          const acts = document.getElementById('iv-acts');
          return (
            r.textContent!.includes(text) && acts !== null && !acts.textContent!.includes('reading')
          );
        },
        expect,
        { timeout: 60000 },
      );
    }

    test('ablating a feature clicked on the graph shows the CLI numbers', async () => {
      assert.equal(await page.locator('#intervene').isVisible(), true);
      const last = Math.max(...circuit.nodes.map((n) => n.position ?? 0));
      const prompt = await page.inputValue('#iv-prompt');
      // Effects are means over the examples: take the strongest feature that fires on this prompt.
      const node = circuit.nodes
        .filter((n) => n.kind === 'feature' && n.position === last)
        .sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect))
        .find(
          (n) => truth(prompt, `${n.site}:${n.feature}@${n.position}=zero`, 0).outcome.kl > 1e-4,
        );
      assert.ok(node, 'the circuit has a feature at the last position');
      await page.locator(`#graph .node[data-id="${node.id}"]`).click();
      assert.equal(await page.inputValue('#iv-target'), `${node.site}:${node.feature}`);
      assert.equal(await page.inputValue('#iv-pos'), String(node.position));
      await page.fill('#iv-generate', '4');
      const doText = `${node.site}:${node.feature}@${node.position}=zero`;
      await runAndWait(() => page.click('#iv-run'), doText);
      const { ids, ivs, outcome } = truth(prompt, doText, 4);
      const rows = await shownRows();
      assert.deepEqual(
        rows.map((r) => r.id),
        outcome.top.map((t) => t.id),
      );
      rows.forEach((r, k) => {
        assert.equal(r.before, outcome.top[k].before);
        assert.equal(r.after, outcome.top[k].after);
        assert.deepEqual(r.text, [
          outcome.top[k].before.toFixed(4),
          outcome.top[k].after.toFixed(4),
        ]);
      });
      assert.ok(outcome.kl > 1e-4);
      assert.equal(
        Number(await page.locator('#iv-kl').innerText()),
        Number(outcome.kl.toPrecision(3)),
      );
      assert.equal(
        await page.locator('#iv-with').textContent(),
        tokenizer!.decode(outcome.generated!.with),
      );
      assert.equal(
        await page.locator('#iv-without').textContent(),
        tokenizer!.decode(outcome.generated!.without),
      );
      // The circuit's other nodes: the changes drawn on the graph are nodeActivations' numbers.
      const deltas = await page.$$eval('#graph .node', (els) =>
        els
          .filter((el) => el.querySelector('.iv-delta'))
          .map((el) => {
            const t = el.querySelector('.iv-delta') as SVGTextElement;
            return {
              id: (el as SVGGElement).dataset.id!,
              before: Number(t.dataset.before),
              after: Number(t.dataset.after),
            };
          }),
      );
      assert.ok(deltas.length > 1, `${deltas.length} nodes shown changing`);
      const byId = new Map(circuit.nodes.map((n) => [n.id, n]));
      const refs = deltas.map((d) => {
        const n = byId.get(d.id)!;
        return { site: n.site, feature: n.feature, position: n.position! };
      });
      const acts = nodeActivations({ model, dictionary }, ids, refs, ivs);
      deltas.forEach((d, k) => {
        assert.equal(d.before, acts.before[k], d.id);
        assert.equal(d.after, acts.after[k], d.id);
      });
    });

    test('steering with the slider reruns with the slider value', async () => {
      // A held response: the progress shows while a request runs, and the page stays usable.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      await page.route('**/api/intervene', async (route) => {
        await held;
        await route.continue();
      });
      await page.selectOption('#iv-op', 'steer');
      const steered = runAndWait(
        () =>
          page.$eval('#iv-amount', (el) => {
            const input = el as HTMLInputElement;
            input.value = '6';
            input.dispatchEvent(new Event('input'));
            input.dispatchEvent(new Event('change'));
          }),
        '=steer=6',
      );
      await page.waitForSelector('#iv-busy:not([hidden])');
      const shown = await page.locator('#graph .node').count();
      // The redraw is asynchronous (layout): wait for it, with the request still held, and
      // always let the request go so that a failure here does not hang the next test.
      try {
        await page.locator('#show-errors').uncheck();
        await page.waitForFunction(
          (n) => document.querySelectorAll('#graph .node').length < n,
          shown,
          { timeout: 20_000 },
        );
        await page.locator('#show-errors').check();
        await page.waitForFunction(
          (n) => document.querySelectorAll('#graph .node').length === n,
          shown,
          { timeout: 20_000 },
        );
      } finally {
        release();
      }
      await steered;
      await page.unroute('**/api/intervene');
      assert.equal(await page.locator('#iv-busy').isHidden(), true);
      assert.equal(await page.locator('#iv-amount-value').innerText(), '6');
      const target = await page.inputValue('#iv-target');
      const pos = await page.inputValue('#iv-pos');
      const doText = `${target}@${pos}=steer=6`;
      const { outcome } = truth(await page.inputValue('#iv-prompt'), doText, 4);
      const rows = await shownRows();
      rows.forEach((r, k) => {
        assert.equal(r.id, outcome.top[k].id);
        assert.equal(r.after, outcome.top[k].after);
      });
    });

    test('a bad request shows its message as text', async () => {
      await page.fill('#iv-target', 'resid_9:<b>1</b>');
      await page.selectOption('#iv-op', 'zero');
      await page.click('#iv-run');
      await page.waitForSelector('#iv-error:not([hidden])', { timeout: 60000 });
      const text = await page.locator('#iv-error').innerText();
      assert.match(text, /feature "<b>1<\/b>" is not a feature index/);
      assert.equal(
        await page.locator('#iv-error b').count(),
        0,
        'the message was not read as HTML',
      );
      await page.waitForSelector('#iv-busy[hidden]', { state: 'attached' });
      // The refused request is the only failure (besides the browser's own favicon probe).
      assert.deepEqual(
        failed.filter((f) => f !== '404 /favicon.ico'),
        ['400 /api/intervene'],
      );
      assert.deepEqual(
        problems.filter((p) => !p.includes('Failed to load resource')),
        [],
      );
    });
  },
);
