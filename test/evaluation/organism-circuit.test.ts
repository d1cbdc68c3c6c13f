// Headline regression: the organism's across-RC circuit, found and evaluated as `npm start` does,
// has the node counts, faithfulness and completeness that README.md and docs/evaluate.md state.
// The measurement and the stated figures (with their tolerances and the doc text that states
// them) are scripts/claims/start.ts, the group `npm run claims` runs; this test runs that group.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { groups } from '../../scripts/claims/start.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test("the organism's rc circuit reaches its stated faithfulness with its stated node count", async () => {
  const [group] = groups;
  const measured = await group.measure();
  const keys = new Set(group.claims.map((c) => c.key));
  for (const key of ['nodesAtStart', 'faithfulness', 'nodesAllLayers', 'faithfulnessAllLayers'])
    assert.ok(keys.has(key), `the group states ${key}`);
  for (const c of group.claims) {
    const doc = fs.readFileSync(path.join(repo, c.doc), 'utf8');
    assert.ok(doc.includes(c.text), `${c.doc} no longer says "${c.text}"`);
    const tolerance = c.relative ? c.tolerance * Math.abs(c.stated) : c.tolerance;
    const got = measured[c.key];
    assert.ok(
      Math.abs(got - c.stated) <= tolerance,
      `${c.key}: measured ${got}, ${c.doc} states ${c.stated} (tolerance ${tolerance})`,
    );
  }
  console.log(JSON.stringify(measured));
});
