// Crash trials in CI: a few rounds of kill -9 of a real xenosd at random moments while instances are
// applied, changed and deleted and their process-driver domains start and stop (crash-trials.ts says what
// each trial checks). Every count must be 0: no acknowledged write lost, never two live domains for one
// instance, no running domain left unadopted or orphaned. The full 50 trials: bench/crash-trials.ts.

import { expect, it } from 'vitest';
import { runCrashTrials } from './crash-trials.ts';

const TRIALS = 6;

it(`loses nothing and leaves one adopted domain per instance across ${TRIALS} kill -9 of xenosd`, async () => {
  const report = await runCrashTrials({ trials: TRIALS });
  const repro = `seed ${report.seed} (node bench/crash-trials.ts --trials ${TRIALS} --seed ${report.seed})`;
  expect(report.problems, repro).toEqual([]);
  expect(report.trials).toBe(TRIALS);
  expect(report.acknowledged, 'the clients got writes acknowledged between the kills').toBeGreaterThan(
    TRIALS,
  );
  expect({
    lost: report.lost,
    duplicates: report.duplicates,
    unadopted: report.unadopted,
    unsettled: report.unsettled,
  }).toEqual({ lost: 0, duplicates: 0, unadopted: 0, unsettled: 0 });
}, 120_000);
