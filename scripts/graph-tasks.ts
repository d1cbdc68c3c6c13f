// The attribution graph on the organism's agreement tasks, per transcoder folder (default: the
// shipped per-layer transcoders and the CLT): a markdown table per folder.
// Usage: npx tsx scripts/graph-tasks.ts [TRANSCODERS_DIR ...] [--prompts 40]

import { graphTaskRows } from './claims/lib/graph-tasks.ts';

const args = process.argv.slice(2);
const at = args.indexOf('--prompts');
const count = at >= 0 ? Number(args.splice(at, 2)[1]) : 40;
const dirs = args.length ? args : ['models/organism/transcoders', 'models/organism/clt'];
for (const dir of dirs) {
  const { kind, rows } = graphTaskRows(dir, count);
  console.log(`\n${dir} (${kind})\n`);
  console.log(
    '| task | replacement score | completeness | active features | nodes kept | deciding noun first | s / graph |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.task} | ${r.replacement.toFixed(3)} | ${r.completeness.toFixed(3)} | ${r.features.toFixed(0)} | ` +
        `${r.kept.toFixed(1)} | ${r.decidingFirst} / ${r.prompts} | ${r.seconds.toFixed(2)} |`,
    );
}
