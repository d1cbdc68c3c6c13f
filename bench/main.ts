// `npm run bench [-- section...]`: runs every benchmark in turn, or only the named sections
// (`npm run bench -- engine`). Add further benches as entries below.
import { runDiscoverBench } from './discover.ts';
import { runDiscoverMemoryBench } from './discover-memory.ts';
import { runEngineBench } from './engine.ts';
import { runSaeLoadBench } from './sae-load.ts';
import { runGraphBench } from './graphs.ts';
import { runGemma2Bench } from './gemma2.ts';
import { runDiscoverCommandBench } from './discover-command.ts';

const benches: [string, () => void | Promise<void>][] = [
  ['engine', runEngineBench],
  ['discover', runDiscoverBench],
  ['discover-memory', runDiscoverMemoryBench],
  ['discover-command', runDiscoverCommandBench],
  ['sae-load', runSaeLoadBench],
  ['graphs', runGraphBench],
  ['gemma2', runGemma2Bench],
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !benches.some(([b]) => b === name));
if (unknown.length > 0) {
  console.error(
    `bench: unknown section ${unknown.join(', ')}; sections: ${benches.map(([b]) => b).join(', ')}`,
  );
  process.exit(2);
}
for (const [name, run] of benches) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`== ${name}`);
  await run();
}
