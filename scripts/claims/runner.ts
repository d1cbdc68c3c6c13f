// The machinery behind `npm run claims` (scripts/claims/run.ts is its command line): find the
// group files, check that every claim's text is still in its document, measure each group once,
// compare, print. Kept apart from the command line so that test/claims/runner.test.ts can run it
// on fake groups and documents.

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Claim, ClaimGroup } from './types.ts';

/** Files in scripts/claims/ that are not group files. */
export const NOT_GROUP_FILES = new Set(['types.ts', 'run.ts', 'runner.ts']);

export interface RunOptions {
  /** Only groups marked `fast` (what CI runs). */
  fast: boolean;
  /** Only these groups, by name. */
  only?: string[];
  /** List the claims and check their texts, without measuring. */
  list: boolean;
  json: boolean;
}

export interface ClaimResult {
  group: string;
  script: string;
  key: string;
  doc: string;
  text: string;
  stated: number;
  /** null when not measured (--list, or the measure threw, or the key is missing). */
  measured: number | null;
  /** The absolute tolerance after `relative` scaling. */
  tolerance: number;
  relative: boolean;
  why: string;
  /** null under --list when the text is found (nothing to judge). */
  pass: boolean | null;
  /** Why it failed, when it did. */
  reason?: string;
}

export interface GroupResult {
  name: string;
  script: string;
  fast: boolean;
  seconds: number | null;
  error?: string;
  claims: ClaimResult[];
}

export interface RunReport {
  groups: GroupResult[];
  passed: number;
  failed: number;
  exitCode: number;
}

export interface RunIo {
  /** Project root: claim docs are relative to it. */
  root: string;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Parses `--fast`, `--only A,B`, `--list`, `--json`; throws on anything else. */
export function parseArgs(argv: string[]): RunOptions {
  const o: RunOptions = { fast: false, list: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--fast') o.fast = true;
    else if (a === '--list') o.list = true;
    else if (a === '--json') o.json = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const value = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!value) throw new Error('--only: expected group names, e.g. --only organism-tasks,sae');
      o.only = [...(o.only ?? []), ...value.split(',').map((s) => s.trim())].filter(Boolean);
    } else
      throw new Error(
        `unknown option "${a}"; expected --fast, --only NAME[,NAME], --list or --json`,
      );
  }
  return o;
}

/** Imports every group file of `dir` (sorted by name) and returns their groups, in order. */
export async function loadGroups(dir: string): Promise<ClaimGroup[]> {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !NOT_GROUP_FILES.has(f))
    .sort();
  const groups: ClaimGroup[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as {
      groups?: unknown;
    };
    if (!Array.isArray(mod.groups))
      throw new Error(
        `${path.join(dir, file)}: a claims file must export \`groups: ClaimGroup[]\` (helpers go in a subfolder)`,
      );
    groups.push(...(mod.groups as ClaimGroup[]));
  }
  const seen = new Set<string>();
  for (const g of groups) {
    if (seen.has(g.name)) throw new Error(`two claim groups are named "${g.name}"`);
    seen.add(g.name);
  }
  return groups;
}

/** The groups the options select; unknown --only names are an error listing the known ones. */
export function selectGroups(groups: ClaimGroup[], o: RunOptions): ClaimGroup[] {
  if (o.only) {
    const names = new Set(groups.map((g) => g.name));
    const unknown = o.only.filter((n) => !names.has(n));
    if (unknown.length)
      throw new Error(
        `--only: no group named ${unknown.join(', ')}; groups: ${[...names].join(', ')}`,
      );
  }
  return groups.filter((g) => (!o.fast || g.fast) && (!o.only || o.only.includes(g.name)));
}

function absoluteTolerance(c: Claim): number {
  return c.relative ? c.tolerance * Math.abs(c.stated) : c.tolerance;
}

/** Reads each document once per run. */
function docReader(root: string): (doc: string) => string | null {
  const cache = new Map<string, string | null>();
  return (doc) => {
    if (!cache.has(doc)) {
      const file = path.join(root, doc);
      cache.set(doc, fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null);
    }
    return cache.get(doc)!;
  };
}

/** Judges one claim against its group's measurement (undefined when nothing was measured). */
export function judgeClaim(
  g: ClaimGroup,
  c: Claim,
  docText: string | null,
  measured: Record<string, number> | undefined,
  groupError: string | undefined,
): ClaimResult {
  const tolerance = absoluteTolerance(c);
  const base = {
    group: g.name,
    script: g.script,
    key: c.key,
    doc: c.doc,
    text: c.text,
    stated: c.stated,
    tolerance,
    relative: !!c.relative,
    why: c.why,
  };
  const fail = (reason: string, value: number | null = null): ClaimResult => ({
    ...base,
    measured: value,
    pass: false,
    reason,
  });
  if (docText === null) return fail(`${c.doc} does not exist`);
  if (!docText.includes(c.text))
    return fail(`text drifted: ${c.doc} no longer contains ${JSON.stringify(c.text)}`);
  if (groupError !== undefined) return fail(`measure failed: ${groupError}`);
  if (measured === undefined) return { ...base, measured: null, pass: null };
  const value = measured[c.key];
  if (typeof value !== 'number' || !Number.isFinite(value))
    return fail(`measure returned no finite "${c.key}" (got ${String(value)})`);
  // A hair of slack so that a tolerance of exactly the doc's rounding is not lost to float error.
  const slack = 1e-9 * Math.max(1, Math.abs(c.stated));
  if (Math.abs(value - c.stated) > tolerance + slack)
    return fail(`|${fmt(value)} - ${fmt(c.stated)}| > ${fmt(tolerance)}`, value);
  return { ...base, measured: value, pass: true };
}

export function fmt(x: number | null): string {
  if (x === null) return '-';
  return String(Number(x.toPrecision(6)));
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

function printGroup(g: GroupResult, out: (line: string) => void): void {
  const time = g.seconds === null ? '' : `, ${g.seconds.toFixed(1)} s`;
  out(`\n${g.name}  (script: ${g.script}${g.fast ? ', fast' : ''}${time})`);
  if (g.error) out(`  measure threw: ${g.error}`);
  const rows = [['  key', 'doc', 'stated', 'measured', 'tolerance', 'result']];
  for (const c of g.claims)
    rows.push([
      `  ${c.key}`,
      c.doc,
      fmt(c.stated),
      fmt(c.measured),
      `±${fmt(c.tolerance)}`,
      c.pass === null ? 'listed' : c.pass ? 'pass' : 'FAIL',
    ]);
  for (const line of table(rows)) out(line);
  for (const c of g.claims) if (c.pass === false) out(`  FAIL ${c.key}: ${c.reason}`);
}

/** Checks, measures and prints the selected groups; never throws for a group's failure. */
export async function runClaims(
  groups: ClaimGroup[],
  o: RunOptions,
  io: RunIo,
): Promise<RunReport> {
  const readDoc = docReader(io.root);
  const results: GroupResult[] = [];
  for (const [i, g] of groups.entries()) {
    let measured: Record<string, number> | undefined;
    let error: string | undefined;
    let seconds: number | null = null;
    if (!o.list) {
      io.err(`claims: [${i + 1}/${groups.length}] measuring ${g.name} (${g.script}) ...`);
      const t0 = performance.now();
      try {
        measured = await g.measure();
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      seconds = (performance.now() - t0) / 1000;
      io.err(
        `claims: [${i + 1}/${groups.length}] ${g.name} ${error === undefined ? 'measured' : 'FAILED'} in ${seconds.toFixed(1)} s`,
      );
    }
    const claims = g.claims.map((c) => judgeClaim(g, c, readDoc(c.doc), measured, error));
    const result: GroupResult = { name: g.name, script: g.script, fast: g.fast, seconds, claims };
    if (error !== undefined) result.error = error;
    results.push(result);
    if (!o.json) printGroup(result, io.out);
  }
  const all = results.flatMap((g) => g.claims);
  const failed = all.filter((c) => c.pass === false).length;
  const passed = all.filter((c) => c.pass === true).length;
  // A group whose measure threw fails even when it has no claims.
  const broken = results.some((g) => g.error !== undefined);
  const exitCode = failed > 0 || broken ? 1 : 0;
  if (o.json) {
    io.out(JSON.stringify({ groups: results, passed, failed }, null, 1));
    io.err(`claims: ${passed} passed, ${failed} failed`);
  } else {
    const listed = all.filter((c) => c.pass === null).length;
    io.out('');
    io.out(
      o.list
        ? `claims: ${all.length} listed in ${results.length} groups (${listed} texts found, ${failed} drifted)`
        : `claims: ${passed} passed, ${failed} failed`,
    );
    if (!o.list) io.out(`${passed} passed, ${failed} failed`);
  }
  return { groups: results, passed, failed, exitCode };
}
