// The demo guest (npm run guest-image) booted with plain QEMU under TCG: it says `ready` on its console,
// answers GET / with its boot id and an in-memory count that goes up by one per request (also under
// concurrent requests), answers GET /name with the name on its kernel command line, writes to its disk
// (only the qcow2 overlay changes, never the base disk.img, and the writes survive a clean power-off),
// powers off cleanly on the ACPI power button, panics at once on xenos.crash=1, and keeps dirtying its
// memory on xenos.dirty=<MiB> (as QEMU's own migration measures it).

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_BUILD_TIMEOUT_MS, guestImageDir } from '../guest-image.ts';
import { until } from '../wait.ts';
import { bootGuest, type PlainGuest } from './plain-qemu.ts';
import { cmdlineFor, vmWebManifests } from './vm-web.ts';

const BOOT_TIMEOUT_MS = 90_000; // ~5 s on an idle machine; TCG on two busy cores can take many times that
const LINE = /^boot=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}) count=(\d+)\n$/;

let image: string;
const work = mkdtempSync(join(tmpdir(), 'xenos-guest-test-'));
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

beforeAll(async () => {
  image = await guestImageDir();
}, GUEST_BUILD_TIMEOUT_MS);

afterAll(() => rmSync(work, { recursive: true, force: true }));

async function get(guest: PlainGuest, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${guest.httpPort}${path}`, {
    // A TCG guest on a loaded 2-core machine can stall for tens of seconds; an abort would lose the count.
    signal: AbortSignal.timeout(90_000),
  });
  expect(res.status, `GET ${path}`).toBe(200);
  return res.text();
}

function parse(body: string): { boot: string; count: number } {
  const m = LINE.exec(body);
  if (!m) throw new Error(`GET / answered ${JSON.stringify(body)}, not one line "boot=<uuid> count=<n>"`);
  return { boot: m[1], count: Number(m[2]) };
}

/** QEMU's exit code, or a failure naming what was awaited and the console's last lines. */
async function exitWithin(guest: PlainGuest, ms: number, what: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no ${what} within ${ms / 1000} s; console: ${guest.console().slice(-400)}`)),
      ms,
    );
  });
  try {
    return await Promise.race([guest.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('the demo guest, booted as manifests/vm-web describes it', () => {
  let guest: PlainGuest;
  let baseDigest: string;
  let overlay: string;
  let overlayBytesAtStart: number;
  const dir = join(work, 'serving');

  beforeAll(async () => {
    mkdirSync(dir);
    baseDigest = sha256(join(image, 'disk.img'));
    const { template } = await vmWebManifests();
    const { kernel, initrd } = template.spec.domain.boot;
    guest = await bootGuest({ image, work: dir, kernel, initrd, cmdline: cmdlineFor(template, 'web-7') });
    overlay = join(dir, 'overlay.qcow2');
    overlayBytesAtStart = statSync(overlay).size;
  }, BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await guest?.stop();
  });

  it(
    'says ready on its console once its HTTP service answers',
    async () => {
      await until(
        () => `"ready" on the console (so far: ${guest.console().slice(-400)})`,
        () => guest.console().split(/\r?\n/).includes('ready'),
        { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 100 },
      );
      expect(await get(guest, '/name')).toBe('web-7\n');
    },
    BOOT_TIMEOUT_MS,
  );

  it('counts GET / in memory, one by one, with a stable boot id', async () => {
    const first = parse(await get(guest, '/'));
    expect(first.count).toBe(1);
    // A client requesting in a loop sees no error and every count once, in order.
    let last = first;
    for (let i = 0; i < 20; i++) {
      const next = parse(await get(guest, '/'));
      expect(next).toEqual({ boot: first.boot, count: last.count + 1 });
      last = next;
    }
    // Concurrent requests each get their own count: no two alike, none skipped.
    const answers = await Promise.all(Array.from({ length: 12 }, () => get(guest, '/').then(parse)));
    expect(new Set(answers.map((a) => a.boot))).toEqual(new Set([first.boot]));
    expect(answers.map((a) => a.count).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 12 }, (_, i) => last.count + 1 + i),
    );
    // /name does not count.
    await get(guest, '/name');
    expect(parse(await get(guest, '/')).count).toBe(last.count + 13);
  }, 300_000);

  it('writes to its overlay only, and powers off cleanly on the ACPI power button', async () => {
    await guest.qmp('system_powerdown');
    const code = await exitWithin(guest, 60_000, 'power-off');
    expect(code, guest.console().slice(-400)).toBe(0);
    expect(guest.console()).toContain('reboot: Power down');

    expect(sha256(join(image, 'disk.img'))).toBe(baseDigest);
    expect(statSync(overlay).size).toBeGreaterThan(overlayBytesAtStart);
    // The requests log on the guest's disk, read from the overlay after the power-off: every GET / is there.
    const raw = join(dir, 'disk.raw');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', overlay, raw], { timeout: 60_000 });
    const log = execFileSync('debugfs', ['-R', 'cat /requests.log', raw], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 30_000,
    });
    const counts = log
      .trim()
      .split('\n')
      .map((l) => Number(/ count=(\d+)$/.exec(l)?.[1]));
    expect(counts.sort((a, b) => a - b)).toEqual(Array.from({ length: 34 }, (_, i) => i + 1));
  }, 120_000);
});

describe('the demo guest with xenos.crash=1', () => {
  let guest: PlainGuest | undefined;
  afterAll(async () => {
    await guest?.stop();
  });

  it('panics at once, and QEMU (pvpanic, -action panic=exit-failure) exits with a failure', async () => {
    const dir = join(work, 'crash');
    mkdirSync(dir);
    // The compressed kernel too: the image's vmlinuz boots the same guest.
    guest = await bootGuest({ image, work: dir, kernel: 'vmlinuz', cmdline: 'console=ttyS0 xenos.crash=1' });
    const code = await exitWithin(guest, 90_000, 'panic');
    expect(code).not.toBe(0);
    expect(guest.console()).toContain('Kernel panic');
    expect(guest.console()).not.toMatch(/^ready$/m);
  }, 120_000);
});

describe('the demo guest with xenos.dirty=16', () => {
  let guest: PlainGuest | undefined;
  afterAll(async () => {
    await guest?.stop();
  });

  it('keeps rewriting its memory: a migration at 32 MiB/s sees thousands of dirty pages a second and never ends', async () => {
    const dir = join(work, 'dirty');
    mkdirSync(dir);
    guest = await bootGuest({ image, work: dir, cmdline: 'console=ttyS0 xenos.name=dirty xenos.dirty=16' });
    const g = guest;
    await until(
      () => `the dirtying line on the console (so far: ${g.console().slice(-400)})`,
      () => g.console().includes('xenos: rewriting 16 MiB of memory over and over (xenos.dirty)'),
      { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 100 },
    );
    // QEMU's dirty-page rate is measured at each pass over memory; a migration into nothing, capped so
    // that it keeps passing, shows it. An idle guest of this size finishes such a migration in seconds.
    await g.qmp('migrate-set-parameters', { 'max-bandwidth': 32 * 1024 * 1024, 'downtime-limit': 1 });
    await g.qmp('migrate', { uri: 'exec:cat > /dev/null' });
    try {
      const rate = await until(
        'three passes of the migration over guest memory',
        async () => {
          const info = (await g.qmp('query-migrate')) as { status: string; ram?: Record<string, number> };
          expect(info.status).toBe('active');
          return (info.ram?.['dirty-sync-count'] ?? 0) >= 3 && info.ram!['dirty-pages-rate'];
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      // 16 MiB rewritten in a loop under TCG: thousands of 4 KiB pages a second (about 8,000 here).
      expect(rate).toBeGreaterThan(1000);
    } finally {
      await g.qmp('migrate_cancel');
    }
  }, 150_000);
});
