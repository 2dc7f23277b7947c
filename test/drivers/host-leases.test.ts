// Machine-wide leases (uids, host ports) with real processes taking them at once from one lease directory,
// as several xenosd on one machine do: never the same number twice; a lease is held while its owner's
// record exists or its taker lives, reclaimed otherwise (unless the number is still in use), released on
// request.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HostLeases } from '../../src/drivers/host-leases.ts';

const TAKER = join(import.meta.dirname, 'fixtures', 'take-leases.ts');
const dirs: string[] = [];
const open: HostLeases[] = [];

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'xenos-leases-'));
  dirs.push(d);
  return d;
}

function leasesIn(dir: string): HostLeases {
  const l = new HostLeases({ dir });
  open.push(l);
  return l;
}

function owner(root: string, name: string, withRecord: boolean): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  if (withRecord) writeFileSync(join(dir, 'domain.json'), '{}');
  return dir;
}

afterEach(() => {
  for (const l of open.splice(0)) l.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('host leases', () => {
  it('gives distinct uids and ports to processes that take them at the same time', async () => {
    const leaseDir = scratch();
    const root = scratch();
    const takers = Array.from({ length: 4 }, (_, i) =>
      spawn(
        process.execPath,
        ['--no-warnings', TAKER, leaseDir, root, `p${i}`, '25', '5000', '5999', '40000'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      ),
    );
    const results = await Promise.all(
      takers.map(async (t) => {
        let out = '';
        t.stdout!.on('data', (d) => {
          out += d;
        });
        const [code] = await once(t, 'exit');
        expect(code).toBe(0);
        return JSON.parse(out) as { uids: number[]; ports: number[] };
      }),
    );
    const uids = results.flatMap((r) => r.uids);
    const ports = results.flatMap((r) => r.ports);
    expect(uids).toHaveLength(100);
    expect(new Set(uids).size).toBe(100);
    expect(new Set(ports).size).toBe(100);
    expect(Math.min(...uids)).toBe(5000);
    expect(Math.max(...uids)).toBe(5099);
  });

  it('keeps an owner its uid, and a lease while its record exists or its taker lives', async () => {
    const leases = leasesIn(scratch());
    const root = scratch();
    const a = owner(root, 'a', true);
    const b = owner(root, 'b', false);
    expect(leases.takeFromRange('uid', 100, 101, a)).toBe(100);
    expect(leases.takeFromRange('uid', 100, 101, a)).toBe(100);
    // b has no record yet, but this process (its taker) lives: held.
    expect(leases.takeFromRange('uid', 100, 101, b)).toBe(101);
    const c = owner(root, 'c', true);
    expect(leases.takeFromRange('uid', 100, 101, c, { inUse: () => false })).toBeUndefined();
    expect(leases.heldBy(b, 'uid')).toEqual([101]);
  });

  it('reclaims a lease whose owner is gone and whose taker died, unless the number is in use', async () => {
    const leaseDir = scratch();
    const root = scratch();
    // A taker process that made its leases and exited; then its owners' records vanish (data dir removed).
    const taker = spawn(
      process.execPath,
      ['--no-warnings', TAKER, leaseDir, root, 'gone', '2', '700', '701', '41000'],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    expect((await once(taker, 'exit'))[0]).toBe(0);
    const leases = leasesIn(leaseDir);
    const fresh = owner(root, 'fresh', true);
    expect(leases.takeFromRange('uid', 700, 701, fresh, { inUse: () => false })).toBeUndefined();
    rmSync(join(root, 'gone-0'), { recursive: true });
    rmSync(join(root, 'gone-1'), { recursive: true });
    // Still running as uid 700 (say): not reclaimed; 701 is.
    expect(leases.takeFromRange('uid', 700, 701, fresh, { inUse: (u) => u === 700 })).toBe(701);
    // Without reclaiming, a full range says so.
    const other = owner(root, 'other', true);
    expect(leases.takeFromRange('uid', 700, 701, other)).toBeUndefined();
    expect(leases.tryTake('port/TCP', 41000, other)).toBe(true);
  });

  it('releases an owner’s leases, keeping the ones asked for', () => {
    const leases = leasesIn(scratch());
    const a = owner(scratch(), 'a', true);
    for (const p of [1, 2, 3]) expect(leases.tryTake('port/TCP', 30000 + p, a)).toBe(true);
    expect(leases.takeFromRange('uid', 10, 20, a)).toBe(10);
    leases.release(a, 'port/TCP', [30002]);
    expect(leases.heldBy(a, 'port/TCP')).toEqual([30002]);
    expect(leases.heldBy(a, 'uid')).toEqual([10]);
    leases.release(a);
    expect(leases.heldBy(a, 'uid')).toEqual([]);
    const b = owner(scratch(), 'b', true);
    expect(leases.tryTake('port/TCP', 30001, b)).toBe(true);
  });
});
