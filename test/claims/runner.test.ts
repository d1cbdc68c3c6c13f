// `npm run claims` itself, on fake groups and documents: a claim passes only when its text is still
// in its document and the measured value is within its tolerance; a throwing measurement fails its
// group; the exit code says whether anything failed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadGroups,
  parseArgs,
  runClaims,
  selectGroups,
  type RunOptions,
} from '../../scripts/claims/runner.ts';
import type { Claim, ClaimGroup } from '../../scripts/claims/types.ts';

const DOC = 'The model has 1.01 M parameters and reaches 97.5% on the test.\n';

function project(): string {
  const root = mkdtempSync(join(tmpdir(), 'claims-'));
  mkdirSync(join(root, 'docs'));
  writeFileSync(join(root, 'docs', 'a.md'), DOC);
  return root;
}

function claim(over: Partial<Claim> = {}): Claim {
  return {
    key: 'params',
    doc: 'docs/a.md',
    text: '1.01 M parameters',
    stated: 1.01,
    tolerance: 0.005,
    why: 'the doc rounds to 2 decimals',
    ...over,
  };
}

function group(
  measured: Record<string, number> | (() => never),
  claims: Claim[],
  over: Partial<ClaimGroup> = {},
): ClaimGroup {
  return {
    name: 'g',
    script: 'scripts/x.ts',
    fast: true,
    measure: async () => (typeof measured === 'function' ? measured() : measured),
    claims,
    ...over,
  };
}

const OPTS: RunOptions = { fast: false, list: false, json: false };

async function run(groups: ClaimGroup[], o: Partial<RunOptions> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const report = await runClaims(
    groups,
    { ...OPTS, ...o },
    { root: project(), out: (l) => out.push(l), err: (l) => err.push(l) },
  );
  return { report, out: out.join('\n'), err: err.join('\n') };
}

test('a measured value within tolerance passes, and the table shows stated, measured and script', async () => {
  const { report, out, err } = await run([group({ params: 1.0149 }, [claim()])]);
  assert.equal(report.exitCode, 0);
  assert.equal(report.passed, 1);
  const c = report.groups[0].claims[0];
  assert.equal(c.pass, true);
  assert.equal(c.measured, 1.0149);
  assert.match(out, /g {2}\(script: scripts\/x\.ts, fast, [\d.]+ s\)/);
  assert.match(out, /params\s+docs\/a\.md\s+1\.01\s+1\.0149\s+±0\.005\s+pass/);
  assert.match(out, /^claims: 1 passed, 0 failed$/m);
  assert.match(out, /^1 passed, 0 failed$/m);
  assert.match(err, /measuring g \(scripts\/x\.ts\)/);
});

test('a value outside the tolerance fails, and so does the run', async () => {
  const { report, out } = await run([group({ params: 1.0151 }, [claim()])]);
  assert.equal(report.exitCode, 1);
  assert.equal(report.groups[0].claims[0].pass, false);
  assert.match(report.groups[0].claims[0].reason!, /1\.0151 - 1\.01\| > 0\.005/);
  assert.match(out, /FAIL/);
  assert.match(out, /^0 passed, 1 failed$/m);
});

test('a tolerance of exactly the rounding is not lost to float error', async () => {
  // 97.45 - 97.5 is -0.04999999999999716 in doubles: must still pass a ±0.05 tolerance.
  const c = claim({ key: 'acc', text: '97.5%', stated: 97.5, tolerance: 0.05 });
  assert.equal((await run([group({ acc: 97.45 }, [c])])).report.exitCode, 0);
  assert.equal((await run([group({ acc: 97.4501 }, [c])])).report.exitCode, 0);
  assert.equal((await run([group({ acc: 97.449 }, [c])])).report.exitCode, 1);
});

test('a relative tolerance scales with the stated value', async () => {
  const c = claim({ key: 'acc', text: '97.5%', stated: 97.5, tolerance: 0.02, relative: true });
  const inside = await run([group({ acc: 97.5 * 1.019 }, [c])]);
  assert.equal(inside.report.exitCode, 0);
  assert.ok(Math.abs(inside.report.groups[0].claims[0].tolerance - 1.95) < 1e-12);
  assert.equal((await run([group({ acc: 97.5 * 1.021 }, [c])])).report.exitCode, 1);
  assert.equal((await run([group({ acc: 97.5 * 0.979 }, [c])])).report.exitCode, 1);
});

test('a claim whose text is no longer in its document fails even when the value matches', async () => {
  const drifted = claim({ text: '1.02 M parameters' });
  const { report } = await run([group({ params: 1.01 }, [drifted, claim({ key: 'params' })])]);
  assert.equal(report.exitCode, 1);
  assert.deepEqual(
    report.groups[0].claims.map((c) => c.pass),
    [false, true],
  );
  assert.match(report.groups[0].claims[0].reason!, /text drifted: docs\/a\.md no longer contains/);
  const missingDoc = await run([group({ params: 1.01 }, [claim({ doc: 'docs/gone.md' })])]);
  assert.match(missingDoc.report.groups[0].claims[0].reason!, /docs\/gone\.md does not exist/);
});

test('a throwing measure fails every claim of its group, not the others', async () => {
  const boom = group(
    () => {
      throw new Error('no model here');
    },
    [claim()],
    { name: 'boom' },
  );
  const fine = group({ params: 1.01 }, [claim()], { name: 'fine' });
  const { report, out } = await run([boom, fine]);
  assert.equal(report.exitCode, 1);
  assert.equal(report.groups[0].error, 'no model here');
  assert.match(report.groups[0].claims[0].reason!, /measure failed: no model here/);
  assert.equal(report.groups[1].claims[0].pass, true);
  assert.match(out, /measure threw: no model here/);
  // A group with no claims whose measure throws still fails the run.
  assert.equal((await run([{ ...boom, claims: [] }])).report.exitCode, 1);
});

test('a missing or non-finite measured key fails', async () => {
  assert.match(
    (await run([group({}, [claim()])])).report.groups[0].claims[0].reason!,
    /no finite "params"/,
  );
  assert.equal((await run([group({ params: NaN }, [claim()])])).report.exitCode, 1);
});

test('--list measures nothing but still fails on drifted text', async () => {
  let measured = 0;
  const g = group({ params: 1.01 }, [claim()], {
    measure: async () => {
      measured++;
      return {};
    },
  });
  const listed = await run([g], { list: true });
  assert.equal(measured, 0);
  assert.equal(listed.report.exitCode, 0);
  assert.equal(listed.report.groups[0].claims[0].pass, null);
  assert.match(listed.out, /claims: 1 listed in 1 groups \(1 texts found, 0 drifted\)/);
  const drifted = await run([{ ...g, claims: [claim({ text: 'gone' })] }], { list: true });
  assert.equal(drifted.report.exitCode, 1);
});

test('--json prints one object with every claim', async () => {
  const { out } = await run([group({ params: 1.01 }, [claim()])], { json: true });
  const parsed = JSON.parse(out) as { passed: number; failed: number; groups: unknown[] };
  assert.equal(parsed.passed, 1);
  assert.equal(parsed.failed, 0);
  assert.equal(parsed.groups.length, 1);
});

test('options: --fast, --only, and errors for unknown options and groups', () => {
  assert.deepEqual(parseArgs(['--fast', '--only', 'a,b', '--json']), {
    fast: true,
    list: false,
    json: true,
    only: ['a', 'b'],
  });
  assert.deepEqual(parseArgs(['--only=a']).only, ['a']);
  assert.throws(() => parseArgs(['--slow']), /unknown option "--slow"/);
  assert.throws(() => parseArgs(['--only']), /--only: expected group names/);
  const groups = [
    group({}, [], { name: 'quick', fast: true }),
    group({}, [], { name: 'slow', fast: false }),
  ];
  const names = (o: Partial<RunOptions>) =>
    selectGroups(groups, { ...OPTS, ...o }).map((g) => g.name);
  assert.deepEqual(names({}), ['quick', 'slow']);
  assert.deepEqual(names({ fast: true }), ['quick']);
  assert.deepEqual(names({ only: ['slow'] }), ['slow']);
  assert.deepEqual(names({ fast: true, only: ['slow'] }), []);
  assert.throws(() => names({ only: ['nope'] }), /no group named nope; groups: quick, slow/);
});

test('group files: every .ts but types.ts and the runner, each exporting groups', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'claims-dir-'));
  const body = (name: string) =>
    `export const groups = [{ name: '${name}', script: 's', fast: true, measure: async () => ({}), claims: [] }];\n`;
  writeFileSync(join(dir, 'b.ts'), body('b'));
  writeFileSync(join(dir, 'a.ts'), body('a'));
  writeFileSync(join(dir, 'types.ts'), 'export {};\n');
  writeFileSync(join(dir, 'run.ts'), 'throw new Error("must not be imported");\n');
  writeFileSync(join(dir, 'runner.ts'), 'throw new Error("must not be imported");\n');
  assert.deepEqual(
    (await loadGroups(dir)).map((g) => g.name),
    ['a', 'b'],
  );
  writeFileSync(join(dir, 'c.ts'), body('a'));
  await assert.rejects(loadGroups(dir), /two claim groups are named "a"/);
  // A fresh folder: imports are cached by URL.
  const other = mkdtempSync(join(tmpdir(), 'claims-dir-'));
  writeFileSync(join(other, 'c.ts'), 'export const other = 1;\n');
  await assert.rejects(loadGroups(other), /c\.ts: a claims file must export `groups/);
});

test('npm run claims exits 2 on a bad option, naming it', () => {
  const entry = new URL('../../scripts/claims/run.ts', import.meta.url).pathname;
  const bad = spawnSync(process.execPath, ['--import', 'tsx', entry, '--slow'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown option "--slow"/);
});
