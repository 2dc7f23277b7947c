// Benchmark: crash trials. One real xenosd (process driver) on one data dir is killed with SIGKILL at
// random moments while three clients apply, change and delete ServiceInstances and the controllers start,
// stop and tear down their domains; one trial in four kills it again while the restarted daemon adopts
// its domains. After every kill a new xenosd starts on the same data dir and the trial counts, with the
// API, /proc and the driver's own list (test/daemon/crash-trials.ts): acknowledged writes lost,
// instances with two live domains, domains not adopted by a live instance (or left for a deleted one),
// and trials that did not settle. Each of those must be 0. Also prints how long the restarts and the
// settling took, and what the kills interrupted.
//
//   node bench/crash-trials.ts [--trials 50] [--seed N]
//
// A failing run prints its seed; the same seed replays the same operations and kill times (the machine's
// timing still varies).

import { parseArgs } from 'node:util';
import { runCrashTrials } from '../test/daemon/crash-trials.ts';
import { printFigure } from './lib/figures.ts';
import { loadText } from './lib/load.ts';
import { summarise } from './lib/stats.ts';

const BENCH = 'crash-trials';
const { values: flags } = parseArgs({
  options: { trials: { type: 'string', default: '50' }, seed: { type: 'string' } },
});
const load = loadText;

const loadBefore = load();
const started = Date.now();
const report = await runCrashTrials({
  trials: Number(flags.trials),
  seed: flags.seed === undefined ? undefined : Number(flags.seed),
  log: (msg) => console.log(`  ${msg}`),
});
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
console.log(
  `\n${BENCH}: ${report.trials} trials in ${minutes} min, seed ${report.seed}, load ${loadBefore} → ${load()}`,
);
const note = `${report.trials} trials, ${report.acknowledged} acknowledged writes`;
for (const [name, value] of [
  ['acknowledged writes lost', report.lost],
  ['instances with two domains', report.duplicates],
  ['domains not adopted', report.unadopted],
  ['trials not settled', report.unsettled],
] as const) {
  printFigure({ bench: BENCH, name, value, unit: '', note: `must be 0; ${note}` }, 30);
}
const restart = summarise(report.restartMs);
const settle = summarise(report.settleMs);
printFigure({ bench: BENCH, name: 'restart to serving p50', value: restart.p50, unit: 'ms' }, 30);
printFigure({ bench: BENCH, name: 'restart to serving p99', value: restart.p99, unit: 'ms' }, 30);
printFigure({ bench: BENCH, name: 'serving to settled p50', value: settle.p50, unit: 'ms' }, 30);
printFigure({ bench: BENCH, name: 'serving to settled p99', value: settle.p99, unit: 'ms' }, 30);
const k = report.killedDuring;
console.log(
  `  kills with API calls in flight: ${k.creates} creates, ${k.patches} patches, ${k.deletes} deletes; ` +
    `within 1 s of a write that starts a domain: ${k.domainStarts}, that stops one: ${k.domainStops}; ` +
    `while adopting after a restart: ${k.adoption}`,
);
for (const p of report.problems) console.log(`  PROBLEM ${p}`);
if (report.problems.length > 0) process.exitCode = 1;
