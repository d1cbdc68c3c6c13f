// The two report screenshots in README.md, made the way a user makes the reports: `sfc start`
// (what `npm start` runs, ending with `sfc report`) for the across-RC circuit, and
// `sfc shift --auto --retrain` then `sfc report` for the SHIFT panel; each report.html is then
// photographed in headless Chromium at the size the README's pictures have.
// Run: `npx tsx scripts/screenshots.ts [--out docs/images]` (about 3 minutes on 2 cores).
// The reports stay in out/screenshots/ to be opened. Paths are given relative to the repository
// so that the page headers in the pictures do not show this checkout's location.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHROMIUM, haveChromium, launchChromium, openReport } from '../test/helpers/chromium.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODEL = ['--model', 'models/organism'];

const SHOTS = [
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

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/images' } } });
const outDir = path.resolve(values.out!);
if (!haveChromium) fail(`${CHROMIUM} is missing: apt-get install chromium (or set SFC_CHROMIUM)`);

for (const shot of SHOTS) shot.commands.forEach(sfc);

fs.mkdirSync(outDir, { recursive: true });
const browser = await launchChromium();
const wrote: string[] = [];
try {
  for (const { png, report, viewport, commands } of SHOTS) {
    const html = path.join(ROOT, report, 'report.html');
    const problems: string[] = [];
    // openReport returns once the page has drawn the graph and its panels (body[data-ready]).
    const page = await openReport(browser, html, problems, [], viewport);
    await page.evaluate(() => document.fonts.ready);
    if (problems.length > 0) fail(`${html}: the page reported\n${problems.join('\n')}`);
    const file = path.join(outDir, png);
    await page.screenshot({ path: file });
    await page.close();
    const from = commands.map((c) => `sfc ${c.join(' ')}`).join(' && ');
    wrote.push(
      `${path.relative(ROOT, file)} (${viewport.width}x${viewport.height}) from ${report}/report.html (${from})`,
    );
  }
} finally {
  await browser.close();
}
process.stdout.write(`\n${wrote.map((w) => `wrote ${w}`).join('\n')}\n`);
