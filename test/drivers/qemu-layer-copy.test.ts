// Failover copies of a real QEMU guest's disks (the demo guest): copyLayer copies the running guest's
// overlay with a QEMU backup job — the guest keeps answering meanwhile — and another host's driver (another
// data dir) makes the domain from that copy (DomainSpec.fromCopy): its overlay, on that host's own base,
// holds the requests the guest had logged to its disk, and the guest boots from it there and logs on. A
// copy that is not a qcow2 overlay is refused and the domain is made from the image, saying why.

import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DomainInfo, DomainSpec } from '../../src/drivers/driver.ts';
import { Cgroups } from '../../src/drivers/process/cgroup.ts';
import { probeQemu } from '../../src/drivers/qemu/probe-qemu.ts';
import { QemuDriver } from '../../src/drivers/qemu/qemu-driver.ts';
import { demoGuestSpec, guestLine, requestLog } from '../guest-client.ts';
import { guestImageDir } from '../guest-image.ts';
import { DriverHarness, httpGet, testInstance, waitForBody } from './driver-contract.ts';

const run = promisify(execFile);
const BOOT_MS = 60_000;
const qemu = await probeQemu();
const guestDir = qemu.usable ? await guestImageDir() : '';

const urlOf = (info: DomainInfo) => `http://${info.endpoints[0].address}:${info.endpoints[0].port}/`;

describe.skipIf(!qemu.usable)('copies of a QEMU guest disks', { timeout: 5 * BOOT_MS }, () => {
  const harness = new DriverHarness();
  let a: QemuDriver;
  let b: QemuDriver;
  let dirB: string;
  let spec: DomainSpec;

  beforeEach(async () => {
    a = harness.track(
      new QemuDriver(
        {},
        { dataDir: await harness.dataDir(), cgroups: new Cgroups({ subtree: 'xenos-copy-a' }) },
      ),
    );
    dirB = await harness.dataDir();
    b = harness.track(
      new QemuDriver({}, { dataDir: dirB, cgroups: new Cgroups({ subtree: 'xenos-copy-b' }) }),
    );
    await a.start();
    await b.start();
    spec = demoGuestSpec(guestDir, testInstance('copied-vm'));
  });
  afterEach(() => harness.cleanup());

  const overlayOnB = () => join(dirB, 'vms', spec.id, 'vm', 'disks', 'root.qcow2');

  /** The guest's count after one more request: asked again while the answer does not come in time (an
   *  emulated guest on a loaded machine can take longer than one GET waits). */
  async function nextCount(url: string): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const line = guestLine((await httpGet(url))?.body ?? '');
      if (line) return line.count;
      if (attempt === 5) throw new Error(`the guest did not answer ${url} in 5 tries`);
    }
  }

  it('copies a running guest disk, and another host boots the guest from the copy', async () => {
    const onA = await a.startDomain(spec);
    const first = guestLine(await waitForBody(urlOf(onA), 'count=', BOOT_MS));
    expect(first).toBeDefined();
    // The guest counts every request it took, also one whose answer a loaded machine's client gave up on:
    // the counts the test saw grow, and those are the ones the copy must hold.
    const counts = [first!.count];
    for (let k = 0; k < 3; k++) counts.push(await nextCount(urlOf(onA)));
    for (let k = 1; k < counts.length; k++) expect(counts[k]).toBeGreaterThan(counts[k - 1]);
    const last = counts.at(-1)!;
    const logged = (n: number) => `boot=${first!.boot} count=${n}`;

    // The guest's own writes reach its disk within its file system's commit interval: copy until the
    // copy holds all four (each try is a whole copy, made again on b from scratch).
    const copyFile = join(await harness.dataDir(), 'copy.tar');
    const scratch = join(await harness.dataDir(), 'disk.raw');
    let lines: string[] = [];
    let prepared: DomainInfo | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const { bytes } = await a.copyLayer(spec.id, createWriteStream(copyFile));
      expect(bytes).toBeGreaterThan(0);
      prepared = await b.prepare({ ...spec, fromCopy: { path: copyFile, host: 'a', takenAt: 'T' } });
      lines = await requestLog(overlayOnB(), scratch);
      if (lines.some((l) => l.endsWith(logged(last)))) break;
      await b.destroy(spec.id);
      await new Promise((r) => setTimeout(r, 2000));
    }
    for (const n of counts)
      expect(
        lines.some((l) => l.endsWith(logged(n))),
        logged(n),
      ).toBe(true);
    expect(prepared?.disk).toMatchObject({ mode: 'Qcow2Overlay', fromCopy: { host: 'a', takenAt: 'T' } });
    // The source guest ran on through the copies.
    expect(guestLine((await httpGet(urlOf(onA)))!.body)?.count).toBeGreaterThan(last);

    // b boots the guest from the copy, and it logs on where the copy left off.
    const onB = await b.startDomain(spec);
    const there = guestLine(await waitForBody(urlOf(onB), 'count=', BOOT_MS));
    expect(there?.boot).not.toBe(first?.boot);
    await b.stopDomain(spec.id, { graceMs: 20_000 });
    const after = await requestLog(overlayOnB(), scratch);
    expect(after.some((l) => l.endsWith(logged(last)))).toBe(true);
    expect(after.some((l) => l.endsWith(`boot=${there?.boot} count=${there?.count}`))).toBe(true);
  });

  it('makes the guest from the image, saying why, when the copy is not a qcow2 overlay', async () => {
    const dir = await harness.dataDir();
    const bad = join(dir, 'root.copy.qcow2');
    await writeFile(bad, 'not a qcow2 file');
    await run('tar', ['-C', dir, '-cf', join(dir, 'copy.tar'), 'root.copy.qcow2']);
    const prepared = await b.prepare({
      ...spec,
      fromCopy: { path: join(dir, 'copy.tar'), host: 'a', takenAt: 'T' },
    });
    expect(prepared.disk?.fromCopy).toBeUndefined();
    expect(prepared.disk?.message).toMatch(
      /the copy of its disk layer taken on host a at T could not be used \(.*not a qcow2 file/,
    );
    // A fresh guest answers (its count starts at 1; a request a loaded client gave up on counts too).
    const onB = await b.startDomain(spec);
    expect(guestLine(await waitForBody(urlOf(onB), 'count=', BOOT_MS))?.count).toBeGreaterThanOrEqual(1);
  });
});
