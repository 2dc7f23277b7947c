// Whether this host can run Xen domains: it is Xen's control domain (dom0) and the toolstack answers. The
// driver registry asks it for `auto` (Xen comes first) and the Xen driver for its own probe.

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { ProbeResult } from '../driver.ts';
import { execFailure } from '../errors.ts';

const run = promisify(execFile);

const PROBE_TIMEOUT_MS = 10_000;

/** Xen: dom0 privileges (/proc/xen/capabilities says control_d) and `xl info` answers. */
export async function probeXen(options: { signal?: AbortSignal } = {}): Promise<ProbeResult> {
  const caps = await readFile('/proc/xen/capabilities', 'utf8').catch(() => undefined);
  if (caps === undefined)
    return { usable: false, reason: 'not running under Xen (no /proc/xen/capabilities)' };
  if (!caps.includes('control_d')) return { usable: false, reason: 'this is a Xen guest, not dom0' };
  try {
    await run('xl', ['info'], { timeout: PROBE_TIMEOUT_MS, signal: options.signal });
    return { usable: true };
  } catch (err) {
    return { usable: false, reason: execFailure(err, 'xl info') };
  }
}
