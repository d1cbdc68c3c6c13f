// Debian's Chromium for the browser tests, headless and quiet on the network.

import fs from 'node:fs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';

/** Debian's Chromium; SFC_CHROMIUM names another binary (or a missing one, to test the guard). */
export const CHROMIUM = process.env.SFC_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = fs.existsSync(CHROMIUM);

/**
 * The `skip` option of a browser suite. With Chromium: false (run it). Without it under CI
 * (process.env.CI set): a failing test is registered, since CI must test the viewer. Without it
 * locally: a loud banner on stderr says the viewer was not tested, and the suite skips.
 */
export function browserSuiteSkip(suite: string): string | false {
  if (haveChromium) return false;
  const why = `${CHROMIUM} is absent (apt-get install chromium)`;
  if (process.env.CI) {
    test(`${suite}: Chromium is required under CI`, () => {
      assert.fail(`${why}: CI must run the viewer's browser tests, not skip them`);
    });
    return `${why}; failing under CI (see the test above)`;
  }
  const bar = '!'.repeat(78);
  const banner = `\n${bar}\n!!! THE VIEWER WAS NOT TESTED: ${suite} skipped, ${why}\n${bar}\n`;
  process.stderr.write(banner);
  return `THE VIEWER WAS NOT TESTED: ${why}`;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Opens a report file in a new page of `viewport` size and waits until it is drawn. Console errors
 * and warnings and page errors go to `problems`, every request's URL to `requests`.
 */
export async function openReport(
  browser: Browser,
  file: string,
  problems: string[],
  requests: string[],
  viewport = { width: 1440, height: 900 },
): Promise<Page> {
  const page = await browser.newPage({ viewport, acceptDownloads: true });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning')
      problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-ready="1"]');
  return page;
}
