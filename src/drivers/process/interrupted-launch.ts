// A launch that the coordinator did not live to record. launch() spawns the domain's supervisor and only
// then writes its pid into the domain's record; a xenosd killed between the two (kill -9, OOM, power cut
// of the daemon alone) leaves a running domain that no record names: the next start would run a second
// copy beside it, and nothing could ever stop the first (found by the crash trials, test/daemon).
//
// So launch() writes `<domain dir>/launching` before it spawns and removes it once the record names the
// new run. While that file exists, a launch may have been interrupted: when the driver starts (before any
// controller asks it for anything: every mark then is a dead coordinator's), and before it launches, stops
// or destroys the domain, it finds the supervisors of this domain that the record does not name and kills
// their sessions. (At start, because nothing else might come: an instance that is Halted or gone by then
// is never started or stopped again, and its stray would run forever.) A supervisor is the leader of its own session (it is spawned detached, with setsid) and
// its command line holds files of the domain's directory (its exit and pid files), which is what this
// looks for in /proc; the recorded run (pid + start time) is never touched. Only then is the file removed.
// Killing rather than adopting keeps one rule — the record is the truth — at the cost of one restart of a
// domain that a crash caught in the middle of starting.

import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Log } from '../../log/logger.ts';
import { DriverError } from '../errors.ts';
import { waitUntil } from '../wait-until.ts';
import { DomainPaths, readRecord } from './domain-record.ts';
import { readStat, sessionProcesses } from './proc.ts';

const MARKER = 'launching';

/** Written before the supervisor is spawned. */
export async function beginLaunch(paths: DomainPaths): Promise<void> {
  await writeFile(join(paths.dir, MARKER), `${new Date().toISOString()}\n`);
}

/** Removed once the record names the run that launch started. */
export async function endLaunch(paths: DomainPaths): Promise<void> {
  await rm(join(paths.dir, MARKER), { force: true });
}

/** Supervisors of the domain in `paths` (session leaders whose arguments name files of its directory),
 *  other than the recorded one. */
async function unrecordedSupervisors(
  paths: DomainPaths,
  recorded?: { pid: number; startTime: number },
): Promise<number[]> {
  const prefix = `${paths.dir}/`;
  const out: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const st = await readStat(Number(name));
    if (!st || st.session !== st.pid || st.state === 'Z' || st.state === 'X') continue;
    if (recorded && st.pid === recorded.pid && st.startTime === recorded.startTime) continue;
    const args = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (args.split('\0').some((a) => a.startsWith(prefix))) out.push(st.pid);
  }
  return out;
}

/**
 * If a launch of this domain may have been interrupted, kills every session of a supervisor of the
 * domain that the record does not name, waits until they are gone and clears the mark. Returns the
 * supervisors it killed (none in the ordinary case, which costs one stat).
 */
export async function reapInterruptedLaunch(
  paths: DomainPaths,
  recorded: { pid: number; startTime: number } | undefined,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<number[]> {
  const marked = await stat(join(paths.dir, MARKER)).then(
    () => true,
    () => false,
  );
  if (!marked) return [];
  const strays = await unrecordedSupervisors(paths, recorded);
  const members = async () => (await Promise.all(strays.map((s) => sessionProcesses(s)))).flat();
  for (const p of await members()) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const gone = await waitUntil(async () => (await members()).length === 0, opts);
  if (!gone) {
    const id = basename(paths.dir);
    throw new DriverError(
      'StopFailed',
      `domain ${id}: processes of an interrupted launch survived SIGKILL`,
      id,
    );
  }
  await endLaunch(paths);
  return strays;
}

/** At driver start: reaps the interrupted launches of every domain under `domainsDir` (see above).
 *  Returns the ids of the domains whose strays it killed; a domain it cannot clean is reported, not fatal. */
export async function reapAllInterruptedLaunches(
  domainsDir: string,
  ids: string[],
  opts: { timeoutMs: number; log: Log },
): Promise<string[]> {
  const reaped: string[] = [];
  for (const id of ids) {
    const paths = new DomainPaths(domainsDir, id);
    try {
      const rec = await readRecord(paths).catch(() => undefined);
      const killed = await reapInterruptedLaunch(paths, rec?.run, { timeoutMs: opts.timeoutMs });
      if (killed.length > 0) {
        reaped.push(id);
        opts.log.warn(
          { domain: id, pids: killed },
          `domain ${id}: killed supervisor ${killed.join(', ')} of a launch the previous coordinator did not record`,
        );
      }
    } catch (err) {
      opts.log.warn(
        { err, domain: id },
        `domain ${id}: cleaning up an interrupted launch failed: ${(err as Error).message}`,
      );
    }
  }
  return reaped;
}
