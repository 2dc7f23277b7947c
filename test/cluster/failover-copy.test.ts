// Failover from a copy of the disk layer, end to end on three real xenosd processes: a counter service
// (its count kept in a file of its own) on host b asks for copies every 2 s (failover.copyEverySeconds).
// Its status names the host keeping the last copy; kill -9 of b re-binds it to that host, which makes its
// domain from the copy — the count survives, FailedOver says StartedFromCopy and from when — and from there
// its copies go on to the host left.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import {
  type ClusterHost,
  cleanUpAfterAll,
  ctl,
  endpointUrl,
  readyOf,
  SI,
  TestCluster,
  waitFor,
} from './harness.ts';

const DOWN_S = 5;
const cluster = new TestCluster({ hostTimeout: '2s' });
const dir = mkdtempSync(join(tmpdir(), 'xenos-failover-copy-'));
let a: ClusterHost;
let b: ClusterHost;

/** Answers its count; POST adds one and writes it (a new file, then rename: a copy finds it whole). */
const COUNTER = `import http from 'node:http';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
let count = 0;
try { count = Number(readFileSync('count', 'utf8')); } catch {}
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok\\n');
  if (req.method === 'POST') { count++; writeFileSync('count.new', String(count)); renameSync('count.new', 'count'); }
  res.end(count + '\\n');
}).listen(Number(process.env.PORT));
`;

beforeAll(async () => {
  [a, b] = await cluster.startHosts(['a', 'b', 'c']);
  mkdirSync(join(dir, 'image'));
  writeFileSync(join(dir, 'image', 'counter.mjs'), COUNTER);
  writeFileSync(
    join(dir, 'counter.yaml'),
    `apiVersion: xenos.io/v1alpha1
kind: ServiceTemplate
metadata:
  name: counter
spec:
  image:
    path: ./image
    format: directory
  process:
    command: [node, counter.mjs]
  ports:
    - name: http
      port: 8080
  healthCheck:
    http:
      port: http
      path: /healthz
    periodSeconds: 2
---
apiVersion: xenos.io/v1alpha1
kind: ServiceInstance
metadata:
  name: counter
spec:
  templateRef:
    name: counter
  host: b
  driver: process
  failover:
    hostDownSeconds: ${DOWN_S}
    copyEverySeconds: 2
`,
  );
}, 60_000);

cleanUpAfterAll(cluster, dir);

const get = () => cluster.json(a, `${SI}/counter`);

it('fails an instance over to the host keeping the copy of its disk layer, and starts it from that copy', async () => {
  const applied = await ctl(a, ['apply', '-f', dir]);
  expect(applied.code, applied.stderr).toBe(0);
  const onB = await waitFor(
    async () => {
      const i = await get();
      return readyOf(i) === 'True' ? i : undefined;
    },
    'counter Ready on b',
    60_000,
  );
  for (let n = 1; n <= 3; n++) {
    expect(await (await fetch(endpointUrl(onB), { method: 'POST' })).text()).toBe(`${n}\n`);
  }
  const counted = Date.now();
  // A copy taken after the count reached 3, kept on another host.
  const copied = await waitFor(
    async () => {
      const i = await get();
      const copy = i.status?.layerCopy;
      return copy && Date.parse(copy.takenAt) > counted ? i : undefined;
    },
    'a copy of counter taken after its writes',
    30_000,
  );
  const keeper = copied.status.layerCopy.host;
  expect(['a', 'c']).toContain(keeper);
  expect(copied.status.layerCopy.bytes).toBeGreaterThan(0);
  expect(copied.status.conditions.find((c: any) => c.type === 'LayerCopied')).toMatchObject({
    status: 'True',
    reason: 'Copied',
  });
  expect(readyOf(copied)).toBe('True');

  b.child.kill('SIGKILL');
  await b.exited;
  const moved = await waitFor(
    async () => {
      const i = await get();
      return i.spec.host !== 'b' && readyOf(i) === 'True' ? i : undefined;
    },
    'counter Ready on another host',
    DOWN_S * 1000 + 40_000,
  );
  // Where the copy was, started from it: the count survived.
  expect(moved.metadata.uid).toBe(onB.metadata.uid);
  expect(moved.spec.host).toBe(keeper);
  expect(await (await fetch(endpointUrl(moved))).text()).toBe('3\n');
  const failedOver = moved.status.conditions.find((c: any) => c.type === 'FailedOver');
  expect(failedOver).toMatchObject({ status: 'True', reason: 'StartedFromCopy' });
  expect(failedOver.message).toMatch(
    /from host b .*copy of its disk layer taken on b at \S+ \(\d+ s before the failover\)/,
  );
  expect(moved.status.disk).toMatchObject({ mode: 'Copy', fromCopy: { host: 'b' } });
  console.log(`counter: failed over to ${keeper}: ${failedOver.message}`);

  // Running there, its copies go on: to the one host left.
  const other = keeper === 'a' ? 'c' : 'a';
  await waitFor(
    async () => (await get()).status?.layerCopy?.host === other,
    `a copy of counter kept on ${other}`,
    30_000,
  );

  const deleted = await ctl(a, ['delete', '-f', dir]);
  expect(deleted.code, deleted.stderr).toBe(0);
  await waitFor(async () => (await cluster.json(a, SI)).items.length === 0, 'counter gone', 30_000);
}, 150_000);
