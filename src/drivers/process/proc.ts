// Reading Linux /proc for the process driver: a process's start time (so a recycled pid is never mistaken
// for a domain), whether it is alive, the processes of a session, and their CPU time and memory.

import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, ... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** utime + stime in clock ticks. */
  cpuTicks: number;
  /** Field 22: start time in clock ticks after boot. With the pid, it names one process for the boot. */
  startTime: number;
}

/** Linux's USER_HZ: 100 on every architecture Node supports (the kernel ABI fixes it for /proc). */
export const CLOCK_TICKS_PER_SECOND = 100;

export function parseStat(text: string): ProcStat | undefined {
  // The command name (field 2) is in parentheses and may hold spaces and ')': split after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number.parseInt(text.slice(0, text.indexOf(' ')), 10);
  const rest = text
    .slice(close + 2)
    .trim()
    .split(' ');
  const field = (n: number) => Number(rest[n - 3]);
  return {
    pid,
    state: rest[0],
    ppid: field(4),
    pgrp: field(5),
    session: field(6),
    cpuTicks: field(14) + field(15),
    startTime: field(22),
  };
}

export async function readStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Synchronous read, for the moment right after spawn (before the event loop can reap the child). */
export function readStatSync(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The process `pid` that started at `startTime` is still alive (not gone, not a zombie, not a new process
 *  that got the same pid). */
export async function isAlive(pid: number | undefined, startTime: number | undefined): Promise<boolean> {
  if (!pid || startTime === undefined) return false;
  const stat = await readStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** All live processes whose session id is `session` (a detached domain's supervisor starts a session). */
export async function sessionProcesses(session: number): Promise<ProcStat[]> {
  const out: ProcStat[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readStat(Number(name));
    if (stat && stat.session === session && stat.state !== 'Z') out.push(stat);
  }
  return out;
}

/** Resident memory of a process in bytes (VmRSS), 0 when it is gone. */
export async function residentBytes(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
