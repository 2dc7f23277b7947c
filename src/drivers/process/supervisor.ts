// The supervisor of a process-driver domain: a few lines of POSIX sh that sit between the coordinator and
// the service. Why: the domain must outlive xenosd (it is started detached, in its own session), and once
// xenosd has died nobody is the service's parent any more, so nobody could learn its exit code. The shell
// stays the service's parent for its whole life and writes the exit status to a file, atomically.
//
// Why sh and not a node script: it costs ~1 MB instead of ~45 MB per domain, starts in a millisecond and is
// on every Linux host. What it does, in order:
//   1. writes its own pid into each cgroup.procs file it is given, BEFORE starting the service, so every
//      process the service ever forks is inside the domain's cgroups (no race); a failure is exit 125 with
//      the reason on stderr, never a silently unlimited domain;
//   2. ignores SIGTERM/SIGINT/SIGHUP itself (`trap :`), so a polite stop sent to the whole process group
//      reaches the service once and the shell lives on to record how it ended. The trap is not inherited:
//      the service gets default signal handling;
//   3. starts the service in the background (so `wait` can be interrupted by the trap and resumed), records
//      its pid, and waits until it has really ended (`kill -0` is true for a not-yet-reaped child);
//   4. writes the status (`128+N` for death by signal N, as sh reports it) to `<exitfile>.tmp` and renames.
// If the shell itself is SIGKILLed (forced stop, OOM kill of the group), no exit file is written; the driver
// then knows the outcome from its own record (it sent the SIGKILL) or reports the domain crashed.
// A background command in a non-interactive sh has stdin from /dev/null (it is anyway) and SIGINT/SIGQUIT
// ignored; the driver never uses SIGINT to stop a domain.

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';

const SCRIPT = `exitfile=$1; childfile=$2; shift 2
while [ "$1" != "--" ]; do
  echo $$ > "$1" || { echo "xenos: cannot join cgroup $1" >&2; exit 125; }
  shift
done
shift
trap : TERM INT HUP
"$@" &
child=$!
echo $child > "$childfile"
while :; do
  wait $child; rc=$?
  kill -0 $child 2>/dev/null || break
done
echo $rc > "$exitfile.tmp" && mv -f "$exitfile.tmp" "$exitfile"
exit $rc`;

export interface SuperviseOptions {
  command: string[];
  cwd: string;
  env: Record<string, string>;
  stdoutPath: string;
  stderrPath: string;
  exitFile: string;
  childPidFile: string;
  cgroupProcsFiles: string[];
}

/** Starts the supervisor detached (own session and process group, stdio appended to the log files) and
 *  lets it go: this process may exit without taking it along. */
export function spawnSupervised(opts: SuperviseOptions): ChildProcess {
  const out = openSync(opts.stdoutPath, 'a');
  const err = openSync(opts.stderrPath, 'a');
  try {
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        SCRIPT,
        'xenos-supervisor',
        opts.exitFile,
        opts.childPidFile,
        ...opts.cgroupProcsFiles,
        '--',
        ...opts.command,
      ],
      { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', out, err] },
    );
    child.unref();
    return child;
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

/** The exit status the supervisor recorded, parsed: `128+N` is death by signal N. */
export function parseExitStatus(text: string): { exitCode: number; signal?: string } | undefined {
  const rc = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(rc)) return undefined;
  if (rc > 128 && rc < 128 + 65) {
    const name = Object.entries(constants.signals).find(([, n]) => n === rc - 128)?.[0];
    return { exitCode: rc, signal: name };
  }
  return { exitCode: rc };
}
