// What `xl list` and `xl list -l` say about the domains of a Xen host, read into plain values. `xl list` is
// the only one with a domain's state (its six state letters) and CPU time; `xl list -l` is the domain's
// whole config as JSON (the same shape `xl create -n` prints, with its domid), which says which instance a
// domain runs. The Xen driver reads both; tests hold these readers to the real xl's output on a real Xen host.

import type { DomainState } from '../driver.ts';

/** One row of `xl list`. */
export interface XlListRow {
  name: string;
  domid: number;
  memoryMiB: number;
  vcpus: number;
  /** The six letters: r running, b blocked, p paused, s shutdown, c crashed, d dying (`-` when not). */
  flags: string;
  cpuSeconds: number;
}

/** One entry of `xl list -l`: the domid and the config it was created with (only what Xenos reads). */
export interface XlLongEntry {
  domid: number;
  config: {
    c_info: { name: string; uuid?: string; type?: string };
    b_info?: { max_memkb?: number; max_vcpus?: number };
  };
}

const ROW = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([rbpscd-]{6})\s+([\d.]+)\s*$/;

/** The rows of `xl list`'s table (its header line skipped). A line that is not a row throws, quoting it. */
export function parseXlList(text: string): XlListRow[] {
  const lines = text.split('\n').filter((l) => l.trim());
  if (lines.length === 0 || !/^Name\s+ID\s+Mem\s+VCPUs\s+State\s+Time\(s\)/.test(lines[0])) {
    throw new Error(`xl list printed no table header: ${JSON.stringify(text.slice(0, 200))}`);
  }
  return lines.slice(1).map((line) => {
    const m = ROW.exec(line);
    if (!m) throw new Error(`xl list printed a row Xenos cannot read: ${JSON.stringify(line)}`);
    return {
      name: m[1],
      domid: Number(m[2]),
      memoryMiB: Number(m[3]),
      vcpus: Number(m[4]),
      flags: m[5],
      cpuSeconds: Number(m[6]),
    };
  });
}

/** A domain's state from its letters: crashed before anything else; a domain shut down or dying has
 *  stopped (its resources are being given back); running, blocked (idle) or paused, it runs. */
export function domainState(flags: string): DomainState {
  if (flags.includes('c')) return 'crashed';
  if (flags.includes('s') || flags.includes('d')) return 'stopped';
  if (/[rbp]/.test(flags)) return 'running';
  // All dashes: a domain being built or torn down between states.
  return 'unknown';
}

/** The entries of `xl list -l` (a JSON array; `[]` when no domain but dom0 exists, which it leaves out). */
export function parseXlListLong(text: string): XlLongEntry[] {
  const value: unknown = JSON.parse(text.trim() === '' ? '[]' : text);
  if (!Array.isArray(value)) throw new Error('xl list -l did not print a JSON array');
  return value.map((entry, i) => {
    const e = entry as Partial<XlLongEntry>;
    if (typeof e?.domid !== 'number' || typeof e.config?.c_info?.name !== 'string') {
      throw new Error(`xl list -l entry ${i} has no domid or no config.c_info.name`);
    }
    return e as XlLongEntry;
  });
}
