// A singleton in a partition, on three real xenosd processes: host c, which runs a singleton instance
// (failover.singleton), is cut off from a and b. c sees one host of three live — no majority — and stops
// its copy; a and b, a majority, mark c NotReady and after hostDownSeconds re-bind the instance to one of
// them. The old copy stopped before the new binding was written, so at no time did two copies run. The
// partition heals: c learns of the re-bind, and its copy stays stopped.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import {
  answers,
  type ClusterHost,
  cleanUpAfterAll,
  ctl,
  endpointUrl,
  readyOf,
  SI,
  TestCluster,
  waitFor,
} from './harness.ts';
import { copyWebTemplate, webInstance } from './web-deployment.ts';

const DOWN_S = 5;
const cluster = new TestCluster({ hostTimeout: '2s' });
const dir = mkdtempSync(join(tmpdir(), 'xenos-singleton-'));
let a: ClusterHost;
let b: ClusterHost;
let c: ClusterHost;

beforeAll(async () => {
  [a, b, c] = await cluster.startHosts(['a', 'b', 'c']);
  copyWebTemplate(dir);
  writeFileSync(
    join(dir, 'one.yaml'),
    webInstance({
      name: 'one',
      host: 'c',
      greeting: 'the only one',
      failover: { hostDownSeconds: DOWN_S, singleton: true },
    }),
  );
}, 60_000);

cleanUpAfterAll(cluster, dir);

const get = (h: ClusterHost) => cluster.json(h, `${SI}/one`);

it('stops the minority side copy of a singleton before the majority starts another', async () => {
  const applied = await ctl(a, ['apply', '-f', dir]);
  expect(applied.code, applied.stderr).toBe(0);
  const onC = await waitFor(async () => {
    const i = await get(a);
    return readyOf(i) === 'True' ? i : undefined;
  }, 'one Ready on c');
  const oldUrl = endpointUrl(onC);
  expect(await answers(oldUrl)).toBe(true);

  const cutAt = Date.now();
  await Promise.all([cluster.deny(c, [a, b]), cluster.deny(a, [c]), cluster.deny(b, [c])]);
  await waitFor(async () => !(await answers(oldUrl)), 'the copy on c stopped', 20_000);
  const stoppedAt = Date.now();
  expect(c.stderr()).toMatch(
    /only 1 of 3 hosts live here \(no majority\): stopping singleton copies default\/one/,
  );

  const moved = await waitFor(
    async () => {
      const i = await get(a);
      return i.spec.host !== 'c' && readyOf(i) === 'True' ? i : undefined;
    },
    'one Ready on the majority side',
    DOWN_S * 1000 + 30_000,
  );
  expect(['a', 'b']).toContain(moved.spec.host);
  expect(moved.metadata.uid).toBe(onC.metadata.uid);
  const reboundAt = Date.parse(moved.metadata.annotations['xenos.io/failed-over-from'].split(' ')[1]);
  // The old copy was gone before the new binding existed: never two copies.
  expect(stoppedAt).toBeLessThan(reboundAt);
  console.log(
    `singleton: partition → old copy stopped ${((stoppedAt - cutAt) / 1000).toFixed(1)} s, re-bound ${((reboundAt - cutAt) / 1000).toFixed(1)} s, Ready on ${moved.spec.host} ${((Date.now() - cutAt) / 1000).toFixed(1)} s`,
  );
  expect(await (await fetch(endpointUrl(moved))).text()).toContain('the only one');

  // Healed: c learns of the re-bind; its copy stays stopped, the instance stays where it went.
  await Promise.all([cluster.deny(c, []), cluster.deny(a, []), cluster.deny(b, [])]);
  await waitFor(async () => (await get(c)).spec.host === moved.spec.host, 'c sees the re-bind');
  await waitFor(async () => (await cluster.hostReady(a, 'c')) === 'True', 'c Ready again');
  expect(await answers(oldUrl)).toBe(false);
  // c's own status of its stopped copy (written while it was cut off) may be newer than the new host's
  // last one: the new host, woken by it, writes its own again, and that is what every host converges on.
  const after = await waitFor(async () => {
    const i = await get(c);
    return i.status.host === moved.spec.host && readyOf(i) === 'True' ? i : undefined;
  }, 'c sees the status the new host wrote');
  expect(after.spec.host).toBe(moved.spec.host);
}, 120_000);
