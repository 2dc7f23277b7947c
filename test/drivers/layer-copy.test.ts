// Failover copies with the real process driver and real sandboxed domains: a running domain's copy of its
// disk layer (Driver.copyLayer, taken without stopping it) holds what the domain wrote, and another host's
// driver (another data dir) makes the domain from it (DomainSpec.fromCopy) — the domain starts there on
// the state it left, its disk says it came from the copy, and its logs stayed behind. A domain that
// already has files ignores a copy; a copy that is no archive of a domain is logged and the domain made from
// the image; a copy of a domain that is not there is refused by name.

import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DomainSpec } from '../../src/drivers/driver.ts';
import { domainIdFor } from '../../src/drivers/driver.ts';
import { DomainNotFoundError } from '../../src/drivers/errors.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import { DriverHarness, testInstance } from './driver-contract.ts';

/** Counts its starts in ./starts (kept in its own files), then waits. */
const SCRIPT = 'echo start >> starts; echo "log line"; exec sleep 600';

describe('copies of a domain disk layer', () => {
  const harness = new DriverHarness();
  afterEach(() => harness.cleanup());

  async function driver() {
    const dataDir = await harness.dataDir();
    const d = harness.track(new ProcessDriver({}, { dataDir }));
    await d.start();
    return { d, dataDir };
  }

  async function specOf(name: string): Promise<DomainSpec> {
    const image = await mkdtemp(join(tmpdir(), 'xenos-copy-image-'));
    harness.dirs.push(image);
    await writeFile(join(image, 'from-image.txt'), 'image\n');
    const instance = testInstance(name);
    return {
      id: domainIdFor(instance),
      instance,
      image: { path: image, digest: 'sha256:test-layer-copy', format: 'directory' },
      process: { command: ['/bin/sh', '-c', SCRIPT] },
    };
  }

  const starts = (dataDir: string, id: string) =>
    readFile(join(dataDir, 'domains', id, 'rootfs', 'starts'), 'utf8').catch(() => '');

  it('makes a domain on another host from the copy of its running layer', async () => {
    const source = await driver();
    const spec = await specOf('copied');
    await source.d.startDomain(spec);
    await expect.poll(() => starts(source.dataDir, spec.id), { timeout: 15_000 }).toBe('start\n');

    const copyFile = join(await harness.dataDir(), 'copy.tar');
    const { bytes } = await source.d.copyLayer(spec.id, createWriteStream(copyFile));
    expect(bytes).toBe((await stat(copyFile)).size);
    // Taken without stopping it.
    expect((await source.d.inspect(spec.id))?.state).toBe('running');

    const keeper = await driver();
    const takenAt = new Date().toISOString();
    const fromCopy = { path: copyFile, host: 'b', takenAt };
    const prepared = await keeper.d.prepare({ ...spec, fromCopy });
    expect(prepared.disk).toMatchObject({ mode: 'Copy', fromCopy: { host: 'b', takenAt } });
    expect(prepared.disk?.message).toContain('copy of its disk layer taken on host b');
    expect(prepared.restartCount).toBe(0);
    const root = join(keeper.dataDir, 'domains', spec.id, 'rootfs');
    expect(await readFile(join(root, 'from-image.txt'), 'utf8')).toBe('image\n');
    expect(await starts(keeper.dataDir, spec.id)).toBe('start\n');
    // Its logs stayed with the host it ran on.
    await expect(stat(join(keeper.dataDir, 'domains', spec.id, 'logs', 'stdout.log'))).rejects.toThrow();

    await keeper.d.startDomain(spec);
    await expect.poll(() => starts(keeper.dataDir, spec.id), { timeout: 15_000 }).toBe('start\nstart\n');
    const running = await keeper.d.inspect(spec.id);
    expect(running?.state).toBe('running');
    expect(running?.disk?.fromCopy).toEqual({ host: 'b', takenAt });

    // Files here already: the copy is not used again (a restart keeps what the domain wrote here).
    await keeper.d.stopDomain(spec.id, { graceMs: 1000 });
    await keeper.d.startDomain({ ...spec, fromCopy });
    await expect
      .poll(() => starts(keeper.dataDir, spec.id), { timeout: 15_000 })
      .toBe('start\nstart\nstart\n');
  }, 60_000);

  it('makes the domain from the image, saying why, when the copy is not an archive of one', async () => {
    const { d } = await driver();
    const spec = await specOf('bad-copy');
    const bad = join(await harness.dataDir(), 'copy.tar');
    await writeFile(bad, 'not a tar archive');
    const prepared = await d.prepare({ ...spec, fromCopy: { path: bad, host: 'b', takenAt: 'T' } });
    expect(prepared.disk?.fromCopy).toBeUndefined();
    expect(prepared.disk?.message).toMatch(
      /the copy of its disk layer taken on host b at T could not be used \(/,
    );
    expect(prepared.state).toBe('prepared');
  });

  it('refuses to copy a domain it does not have', async () => {
    const { d } = await driver();
    const out = createWriteStream(join(await harness.dataDir(), 'none.tar'));
    await expect(d.copyLayer('xenos-default-none-00000000', out)).rejects.toThrow(DomainNotFoundError);
    out.destroy();
  });
});
