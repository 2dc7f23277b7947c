// Live migration end to end with two real xenosd processes (QEMU driver) and the demo guest: the vm-web
// template and one instance on host a, its service reached through its endpoint, then `xenosctl migrate
// vm-web-1 b --mode live --wait` (the real CLI) while a client keeps requesting through the endpoint the
// API names. The guest must arrive with its memory: the same boot id and its request count continued,
// reached through the endpoint on b, the client answered by that one guest throughout, the
// ServiceMigration Succeeded with the pause measured, and nothing of it left on a. Then back to a with the
// link cut right after the commit (the source's `go` never arrives): the target runs the guest once it
// sees the binding. Last, a second guest on a and `xenosctl drain a`: both move live to b.

import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeQemu } from '../../../src/drivers/qemu/probe-qemu.ts';
import { killAllCtl, xenosctl } from '../../cli/run-xenosctl.ts';
import { guestLine, keepRequesting } from '../../guest-client.ts';
import { guestImageDir } from '../../guest-image.ts';
import { type ClusterHost, TestCluster, waitFor } from '../harness.ts';
import { expectDrained } from './drain-output.ts';

const API = '/apis/xenos.io/v1alpha1/namespaces/default';
const MANIFESTS = join(import.meta.dirname, '..', '..', '..', 'manifests', 'vm-web');
/** Boots take 5–12 s under TCG on two shared cores; everything here waits well beyond that. */
const BOOT_MS = 90_000;

/** GET `url`: the demo guest's one line, parsed. */
async function guestGet(url: string): Promise<{ boot: string; count: number }> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
  const line = guestLine(text);
  if (!line) throw new Error(`the guest answered ${JSON.stringify(text)} at ${url}`);
  return line;
}

const qemu = await probeQemu();
const guestDir = qemu.usable ? await guestImageDir() : '';

describe.skipIf(!qemu.usable)('live migration of a real guest between two real hosts', () => {
  // No host dies here: a long liveness timeout keeps two QEMU guests booting under TCG on a loaded
  // machine from making a host look gone (the planner refuses a target it does not see live).
  const cluster = new TestCluster({ hostTimeout: '10s' });
  const dir = mkdtempSync(join(tmpdir(), 'xenos-migrate-live-'));
  const gate = (h: string) => join(dir, `gate-${h}`);
  let a: ClusterHost;
  let b: ClusterHost;

  const ctl = (via: ClusterHost, args: string[], timeoutMs = 60_000) =>
    xenosctl(args, { env: { XENOS_SERVER: via.url, XENOS_TOKEN: via.token }, timeoutMs });

  beforeAll(async () => {
    // The manifests as shipped, with the image read from wherever the guest was built and the
    // instance placed on a.
    const template = readFileSync(join(MANIFESTS, 'template.yaml'), 'utf8');
    expect(template).toMatch(/path: \.\.\/\.\.\/build\/guest/);
    writeFileSync(
      join(dir, 'template.yaml'),
      template.replace('path: ../../build/guest', `path: ${guestDir}`),
    );
    const instance = readFileSync(join(MANIFESTS, 'instance.yaml'), 'utf8');
    expect(instance).toMatch(/ {2}driver: qemu\n/);
    writeFileSync(
      join(dir, 'instance.yaml'),
      instance.replace('  driver: qemu\n', '  driver: qemu\n  host: a\n'),
    );
    const args = ['--driver', 'qemu'];
    for (const h of ['a', 'b']) mkdirSync(gate(h));
    a = await cluster.startHost('a', { args, migrationGate: gate('a') });
    b = await cluster.startHost('b', { join: a.addrs, args, migrationGate: gate('b') });
    await waitFor(
      async () => (await cluster.hostNames(a)).length === 2 && (await cluster.hostNames(b)).length === 2,
      'both hosts to see each other',
    );
    const applied = await ctl(a, ['apply', '-f', dir], 120_000);
    expect(applied.code, applied.stderr).toBe(0);
  }, 3 * BOOT_MS);

  afterAll(async () => {
    if (process.env.XENOS_TEST_DUMP)
      for (const h of cluster.hosts) console.log(`--- ${h.name}\n${h.stderr().slice(-8000)}`);
    killAllCtl();
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, BOOT_MS);

  const instance = (via: ClusterHost, name = 'vm-web-1') =>
    cluster.json(via, `${API}/serviceinstances/${name}`);

  /** GET / through the instance's first endpoint once `via` says it is Ready on `host`. */
  async function answer(
    via: ClusterHost,
    host: string,
    name = 'vm-web-1',
  ): Promise<{ boot: string; count: number; url: string }> {
    return waitFor(
      async () => {
        const i = await instance(via, name);
        const ready = i.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
        const ep = i.status?.endpoints?.[0];
        if (i.status?.host !== host || !ready || !ep) return undefined;
        const url = ep.url ?? `http://${ep.address}:${ep.port}/`;
        return { ...(await guestGet(url)), url };
      },
      `${name} answering on ${host} as ${via.name} sees it`,
      BOOT_MS,
    );
  }

  /** What of the guests host `h` still has: its directory under vms/ and the processes running it (QEMU and its wrappers). */
  function guestOn(h: ClusterHost): { dirs: string[]; procs: string[] } {
    const vms = join(h.dataDir, 'vms');
    const dirs = existsSync(vms) ? readdirSync(vms).filter((n) => n.includes('vm-web-')) : [];
    const procs = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => /qemu-system/.test(l) && l.includes(h.dataDir));
    return { dirs, procs };
  }

  it(
    'moves the running guest with its memory: same boot id, count continued, on b only',
    async () => {
      const first = await answer(a, 'a');
      const second = await answer(a, 'a');
      expect(second.boot).toBe(first.boot);
      expect(second.count).toBe(first.count + 1);

      await waitFor(async () => (await cluster.hostReady(a, 'b')) === 'True', 'host b Ready as a sees it');
      // A client keeps using the service through the move, following the endpoint a's API names.
      const client = keepRequesting(async () => {
        const ep = (await instance(a)).status?.endpoints?.[0];
        return ep && (ep.url ?? `http://${ep.address}:${ep.port}/`);
      }, 50);
      const began = Date.now();
      const moved = await ctl(
        a,
        ['migrate', 'vm-web-1', 'b', '--mode', 'live', '--wait', '--timeout', '5m'],
        6 * 60_000,
      );
      const tookMs = Date.now() - began;
      // A few answers from b (under load, a request begun at a's paused copy waits out its timeout first).
      const fromA = first.url;
      await waitFor(
        () => client.answers.filter((x) => x.url !== fromA).length >= 3,
        'three answers from b after the move',
        30_000,
      ).finally(() => client.stop());
      const seen = client;
      expect(moved.code, `${moved.stdout}\n${moved.stderr}`).toBe(0);
      expect(moved.stdout).toMatch(/vm-web-1 runs on b \(downtime [\d.]+ ms, \d+ bytes moved\)/);
      const name = /servicemigration\.xenos\.io\/(\S+) created/.exec(moved.stdout)![1];

      // --wait returned: a's API already names b, with endpoints there.
      const now = await instance(a);
      expect(now.status.host).toBe('b');
      expect(now.status.endpoints.length).toBeGreaterThan(0);
      const m = await cluster.json(a, `${API}/servicemigrations/${name}`);
      expect(m.status.phase, JSON.stringify(m.status)).toBe('Succeeded');
      expect(m.status).toMatchObject({ sourceHost: 'a', targetHost: 'b', mode: 'Live' });
      expect(m.status.downtimeMs).toBeGreaterThan(0);
      expect(m.status.bytesTransferred).toBeGreaterThan(0);
      // The binding was the commit point, written inside the driver's switchover (not after it returned).
      expect(a.stderr()).toMatch(/default\/vm-web-1: bound to host b at the switchover/);
      console.log(
        `live move of vm-web-1 (128 MiB, TCG) a → b over the cluster link: downtimeMs ${m.status.downtimeMs}, ` +
          `${m.status.bytesTransferred} bytes, xenosctl migrate --wait took ${tookMs} ms ` +
          `(load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`,
      );

      // The client was answered by one guest throughout, its count only going up; what failed, failed
      // inside the move (the old endpoint closing with the source's QEMU, until the new one is named).
      expect(seen.answers.length).toBeGreaterThan(10);
      expect(new Set(seen.answers.map((x) => x.boot))).toEqual(new Set([first.boot]));
      for (let i = 1; i < seen.answers.length; i++)
        expect(seen.answers[i].count).toBeGreaterThan(seen.answers[i - 1].count);
      const oldUrl = seen.answers[0].url;
      expect(seen.answers.at(-1)!.url).not.toBe(oldUrl);
      // One switch: answers from a, then (after a gap) only from b; every failure falls in that gap.
      const lastOnA = seen.answers.findLastIndex((x) => x.url === oldUrl);
      expect(seen.answers.slice(lastOnA + 1).every((x) => x.url === seen.answers.at(-1)!.url)).toBe(true);
      const switchGap = [seen.answers[lastOnA].at, seen.answers[lastOnA + 1].at];
      const outside = seen.errors.filter((f) => f.at < switchGap[0] || f.at > switchGap[1]);
      expect(
        outside.map((f) => `${f.error} at ${f.at - switchGap[0]} ms`),
        `failures outside the switch (${switchGap[1] - switchGap[0]} ms from the last answer on a)`,
      ).toEqual([]);
      console.log(
        `a client requesting every 50 ms through the move: ${seen.answers.length} answers, ` +
          `${seen.errors.length} failed requests, all in the switch from a's endpoint to b's ` +
          `(${switchGap[1] - switchGap[0]} ms without an answer)`,
      );

      // The same guest, memory and all, answers through its endpoint on b.
      const there = await answer(a, 'b');
      expect(there.url).not.toBe(first.url);
      expect(there.boot).toBe(first.boot);
      expect(there.count).toBe(seen.answers.at(-1)!.count + 1);
      const fromB = await answer(b, 'b');
      expect(fromB.boot).toBe(first.boot);
      expect(fromB.count).toBe(there.count + 1);

      await waitFor(
        () => guestOn(a).dirs.length + guestOn(a).procs.length === 0,
        'nothing of vm-web-1 left on a',
        60_000,
      );
      // The same probe finds the guest where it runs now (so the one on a can fail).
      expect(guestOn(b).dirs).toHaveLength(1);
      expect(guestOn(b).procs.length).toBeGreaterThan(0);
    },
    8 * 60_000,
  );
  it(
    'the link cut right after the commit: the target runs the guest on seeing the binding',
    async () => {
      const before = await answer(b, 'b');
      // b is the source now: its `go` to a is dropped and the control stream reset (migration-gate.ts).
      writeFileSync(join(gate('b'), 'cut-go'), '');
      await waitFor(async () => (await cluster.hostReady(b, 'a')) === 'True', 'host a Ready as b sees it');
      const moved = await ctl(
        b,
        ['migrate', 'vm-web-1', 'a', '--mode', 'live', '--wait', '--timeout', '5m'],
        6 * 60_000,
      );
      expect(existsSync(join(gate('b'), 'cut')), 'the gate cut the go').toBe(true);
      expect(moved.code, `${moved.stdout}\n${moved.stderr}`).toBe(0);
      expect(b.stderr()).toMatch(/default\/vm-web-1: bound to host a at the switchover/);
      const back = await answer(b, 'a');
      expect(back.boot).toBe(before.boot);
      // Continued (a fresh boot counts from 1); answer() asks again after its 5 s timeout on a loaded
      // machine, which counts too.
      expect(back.count).toBeGreaterThan(before.count);
      expect(back.count).toBeLessThanOrEqual(before.count + 3);
      await waitFor(
        () => guestOn(b).dirs.length + guestOn(b).procs.length === 0,
        'nothing of vm-web-1 left on b',
        60_000,
      );
    },
    8 * 60_000,
  );
  it(
    'drains a host with two guests: both move live, each with its memory, nothing left behind',
    async () => {
      const spec = (await instance(a)).spec;
      await cluster.post(a, `${API}/serviceinstances`, {
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceInstance',
        metadata: { name: 'vm-web-2' },
        spec: { templateRef: spec.templateRef, driver: 'qemu', host: 'a' },
      });
      const names = ['vm-web-1', 'vm-web-2'];
      const before = new Map<string, { boot: string; count: number }>();
      for (const name of names) before.set(name, await answer(a, 'a', name));

      const drained = await ctl(a, ['drain', 'a', '--timeout', '8m'], 9 * 60_000);
      expectDrained(drained, { host: 'a', cordoned: 'cordoned', moved: names, to: 'b', mode: 'Live' });
      for (const name of names) {
        const there = await answer(a, 'b', name);
        expect(there.boot).toBe(before.get(name)!.boot);
        // Continued, not restarted (a fresh boot counts from 1). Two guests moving at once under TCG can
        // answer a GET after answer()'s 5 s timeout, which then asks again: a count or two more.
        expect(there.count).toBeGreaterThan(before.get(name)!.count);
        expect(there.count).toBeLessThanOrEqual(before.get(name)!.count + 3);
      }
      await waitFor(
        () => guestOn(a).dirs.length + guestOn(a).procs.length === 0,
        'nothing of either guest left on a',
        60_000,
      );
      const uncordoned = await ctl(a, ['uncordon', 'a']);
      expect(uncordoned.code, uncordoned.stderr).toBe(0);
    },
    10 * 60_000,
  );
});
