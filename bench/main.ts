// `npm run bench`: runs every benchmark in turn. Add further benches as imports below.
import { runDiscoverBench } from './discover.ts';
import { runEngineBench } from './engine.ts';

const benches: [string, () => void | Promise<void>][] = [
  ['engine', runEngineBench],
  ['discover', runDiscoverBench],
];

for (const [name, run] of benches) {
  console.log(`== ${name}`);
  await run();
}
