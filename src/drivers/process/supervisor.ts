// The supervisor of a process-driver domain: a few lines of POSIX sh that sit between the coordinator and
// the service (in its sandbox). Why: the domain must outlive xenosd (it is started detached, in its own
// session), and once xenosd has died nobody is the service's parent any more, so nobody could learn its exit
// code. The shell stays the parent for the domain's whole life and writes the exit status to a file,
// atomically. bwrap's --die-with-parent ties the sandbox to this shell, never to xenosd.
//
// Why sh and not a node script: it costs ~1 MB instead of ~45 MB per domain, starts in a millisecond and is
// on every Linux host. What it does, in order:
//   1. writes its own pid into each cgroup.procs file it is given, BEFORE starting anything, so every process
//      of the domain (log pumps, bwrap, the service and all it forks) is inside the domain's cgroups (no
//      race); a failure is exit 125 with the reason on stderr, never a silently unlimited domain;
//   2. ignores SIGTERM/SIGINT/SIGHUP itself (`trap :`), so it lives on to record how the domain ended. The
//      driver sends the polite stop to the processes inside the sandbox, not to this shell (see
//      process-tree.ts: bwrap does not forward signals);
//   3. starts the command with its stdout and stderr on two pipes, each read by a log pump (below), and,
//      when asked, bwrap's JSON status on fd 3 (`run/sandbox.json`: the sandbox's pid 1 and the command's
//      exit code) and its options on fd 4 (`run/bwrap.args`); it records the command's pid in `run/child.pid` and waits until it has really ended
//      (`kill -0` is true for a not-yet-reaped child). Anonymous pipes, not FIFOs: the service's fds name
//      nothing on the host's file system;
//   4. once the pumps have drained, writes the status (`128+N` for death by signal N) to `run/exit.tmp`
//      and renames it to `run/exit`.
// The log pump rotates by size without losing a byte: `head -c N` copies at most the room left in the
// current file from the pipe (what it does not read stays in the pipe; `stdbuf -o0` makes it write each
// read at once instead of buffering, so `logs -f` sees lines as they come), then the files shift
// (`log` → `log.1` → … → `log.KEEP`, the oldest dropped) and the next `head` starts a fresh file. A `head`
// that stops short of its count has met the end of the stream. A log file still empty is not `stat`ed (a
// fork and an exec less per pump when a domain starts for the first time). run/ and logs/ are outside
// everything the domain can see; the service holds only the pipes' write ends.
// If the shell itself is SIGKILLed (forced stop, OOM kill), no exit file is written; the driver then knows the
// outcome from its own record (it sent the SIGKILL) or reports the domain crashed.

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { constants } from 'node:os';

const SCRIPT = `umask 022
run=$1; logmax=$2; logkeep=$3; status=$4; shift 4
while [ "$1" != "--" ]; do
  echo $$ > "$1" || { echo "xenos: cannot join cgroup $1" >&2; exit 125; }
  shift
done
shift
trap : TERM INT HUP
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
pump() {
  umask 077
  used=0; [ -s "$1" ] && used=$(size "$1")
  while :; do
    if [ "$used" -ge "$logmax" ]; then
      i=$logkeep
      while [ "$i" -gt 1 ]; do mv -f "$1.$((i - 1))" "$1.$i" 2>/dev/null; i=$((i - 1)); done
      mv -f "$1" "$1.1"
      used=0
    fi
    stdbuf -o0 head -c $((logmax - used)) >>"$1" || exit 0
    used=$(size "$1")
    [ "$used" -lt "$logmax" ] && exit 0
  done
}
reap() {
  while :; do
    wait "$1"; reaped=$?
    kill -0 "$1" 2>/dev/null || return $reaped
  done
}
service() {
  if [ "$status" = 1 ]; then
    "$@" 3>"$run/sandbox.json" 4<"$run/bwrap.args" </dev/null &
  else
    "$@" </dev/null &
  fi
  child=$!
  echo $child > "$run/child.pid"
  reap $child
  echo $? > "$run/exit.code"
}
rm -f "$run/sandbox.json" "$run/exit.code"
{ service "$@" 2>&1 1>&5 5>&- | pump "$run/../logs/stderr.log"; } 5>&1 | pump "$run/../logs/stdout.log"
code=$(cat "$run/exit.code" 2>/dev/null || echo 125)
echo $code > "$run/exit.tmp" && mv -f "$run/exit.tmp" "$run/exit"
exit $code`;

export interface LogRotation {
  /** A log file is rotated once it holds this many bytes. */
  maxBytes: number;
  /** Rotated files kept beside the current one (`stdout.log.1` … `.KEEP`). */
  keep: number;
}

/** 10 MiB per file, the current one and 3 rotated: at most 40 MiB per stream per domain. */
export const DEFAULT_LOG_ROTATION: LogRotation = { maxBytes: 10 * 1024 * 1024, keep: 3 };

export interface SuperviseOptions {
  command: string[];
  /** Where the command starts (the sandbox changes directory itself). */
  cwd: string;
  env: Record<string, string>;
  /** The domain's run/ directory (its logs/ is beside it). */
  runDir: string;
  /** The supervisor's own messages (a cgroup it cannot join) are appended here. */
  stderrPath: string;
  rotation: LogRotation;
  cgroupProcsFiles: string[];
  /** The command is bwrap with `--json-status-fd 3` and `--args 4` (run/bwrap.args). */
  sandboxStatus: boolean;
}

/** Starts the supervisor detached (own session and process group) and lets it go: this process may exit
 *  without taking it along. Only stdio reaches it (node opens every other fd close-on-exec). */
export function spawnSupervised(opts: SuperviseOptions): ChildProcess {
  const err = openSync(opts.stderrPath, 'a', 0o600);
  try {
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        SCRIPT,
        'xenos-supervisor',
        opts.runDir,
        String(opts.rotation.maxBytes),
        String(opts.rotation.keep),
        opts.sandboxStatus ? '1' : '0',
        ...opts.cgroupProcsFiles,
        '--',
        ...opts.command,
      ],
      { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'ignore', err] },
    );
    child.unref();
    return child;
  } finally {
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

/** What bwrap wrote on its JSON status fd: the sandbox's pid 1 (host pid) and, once over, the exit code.
 *  `child-pid` without `exit-code` after the end means bwrap failed while setting the sandbox up. */
export function parseSandboxStatus(text: string): { initPid?: number; exitCode?: number } {
  const out: { initPid?: number; exitCode?: number } = {};
  const pid = /"child-pid":\s*(\d+)/.exec(text);
  const exit = /"exit-code":\s*(\d+)/.exec(text);
  if (pid) out.initPid = Number(pid[1]);
  if (exit) out.exitCode = Number(exit[1]);
  return out;
}
