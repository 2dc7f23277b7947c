// Domain logs rotate by size through the supervisor's log pumps, and reading them is not fooled by a
// rotation: a follower started before sees every line exactly once, in order, across several rotations; the
// last N lines may start in a rotated file; no file grows past the limit and only KEEP rotated files stay.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { domainIdFor } from '../../src/drivers/driver.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import { waitUntil } from '../../src/drivers/wait-until.ts';
import { DriverHarness, httpGet, testInstance, waitForBody } from './driver-contract.ts';

const IMAGE = join(import.meta.dirname, 'fixtures', 'http-service');
const MAX = 2000;

describe('domain log rotation', () => {
  const harness = new DriverHarness();
  afterEach(() => harness.cleanup());

  it('rotates by size without losing or repeating a line, for followers and for --tail', async () => {
    const dataDir = await harness.dataDir();
    const driver = harness.track(new ProcessDriver({}, { dataDir, logRotation: { maxBytes: MAX, keep: 2 } }));
    await driver.start();
    const instance = testInstance('rotate');
    const spec = {
      id: domainIdFor(instance),
      instance,
      image: { path: IMAGE, digest: 'sha256:test-http-service' },
      process: { command: ['node', 'server.mjs'] },
      ports: [{ name: 'http' as const, port: 8080, protocol: 'TCP' as const }],
    };
    const info = await driver.startDomain(spec);
    const url = `http://127.0.0.1:${info.endpoints[0].port}`;
    await waitForBody(`${url}/`, instance.name, 15_000);

    const abort = new AbortController();
    let followed = '';
    const following = (async () => {
      for await (const c of driver.logs(spec.id, { follow: true, signal: abort.signal }))
        if (c.stream === 'stdout') followed += c.data.toString();
    })();
    // The follower reads from the start: once it has shown the first line, it is following.
    await waitUntil(() => followed.includes('ready'), { timeoutMs: 10_000 });
    // 80 lines of about 100 bytes: four rotations of a 2000-byte file, the oldest one dropped. Sizes
    // rotate whatever the reader does, so a follower outrun by more than KEEP rotations between two of
    // its polls has lost the files dropped meanwhile; on a loaded machine a poll can be late by seconds,
    // so the lines come in batches of half a file, each sent once the follower has shown the last.
    const lines: string[] = [];
    for (let i = 0; i < 80; i++) {
      const path = `/line-${String(i).padStart(3, '0')}-${'x'.repeat(80)}`;
      lines.push(`GET ${path}`);
      expect((await httpGet(`${url}${path}`))?.status).toBe(200);
      if (i % 10 === 9) await waitUntil(() => followed.includes(lines.at(-1)!), { timeoutMs: 10_000 });
    }
    await waitUntil(() => followed.includes(lines.at(-1)!), { timeoutMs: 10_000 });
    abort.abort();
    await following;
    const got = followed.split('\n').filter((l) => l.startsWith('GET /line-'));
    expect(got).toEqual(lines);

    const logs = join(dataDir, 'domains', spec.id, 'logs');
    const names = (await readdir(logs)).filter((n) => n.startsWith('stdout')).sort();
    expect(names).toEqual(['stdout.log', 'stdout.log.1', 'stdout.log.2']);
    for (const n of names) expect((await stat(join(logs, n))).size).toBeLessThanOrEqual(MAX);

    let tail = '';
    for await (const c of driver.logs(spec.id, { tail: 25 })) if (c.stream === 'stdout') tail += c.data;
    expect(tail.trim().split('\n')).toEqual(lines.slice(-25));
    // Everything still kept: whole files, the newest lines last.
    let all = '';
    for await (const c of driver.logs(spec.id)) if (c.stream === 'stdout') all += c.data;
    expect(all.endsWith(`${lines.at(-1)}\n`)).toBe(true);
    expect(all.length).toBeGreaterThan(2 * MAX);
    expect(all).not.toContain('line-000');
  });
});
