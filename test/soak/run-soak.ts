// `pnpm soak` (SOAK_SECONDS, default 60): the mixed load with faults switched on and off.
// Prints the figures and writes bench/results/soak-latest.json (the repository's results folder); fails on any hung request.
import { writeFile } from 'node:fs/promises';
import { runSoak } from './soak.ts';

const seconds = Number(process.env.SOAK_SECONDS ?? 60);
if (!(seconds > 0 && seconds <= 600)) {
  console.error(`SOAK_SECONDS must be between 1 and 600, received ${process.env.SOAK_SECONDS}`);
  process.exit(2);
}
const report = await runSoak({ seconds, verbose: true });
console.log(JSON.stringify(report, null, 2));
await writeFile(
  new URL('../../bench/results/soak-latest.json', import.meta.url),
  `${JSON.stringify(report, null, 2)}\n`,
);
if (report.hung > 0) {
  console.error(`${report.hung} request(s) hung`);
  process.exit(1);
}
