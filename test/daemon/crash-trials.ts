// Crash trials (for crash-trials.test.ts and bench/crash-trials.ts): one real xenosd with the process
// driver on one data dir is killed with SIGKILL at random moments while clients apply, change and delete
// ServiceInstances and its controllers start, stop and tear down their domains; after each kill a new
// xenosd starts on the same data dir and the trial checks, with the API, /proc and the driver's own list:
//  - lost: every write the API acknowledged before the kill is there (a create, a label bump, a
//    runStrategy change); an acknowledged delete never comes back;
//  - duplicates: never two live domains for one instance (sampled from /proc and the driver's list all
//    the while the restarted daemon settles);
//  - unadopted: once settled, every running domain belongs to a live instance that names it in its
//    status (adopted, Ready), and no domain is left for an instance that was deleted or Halted.
// Writes in flight at the kill may or may not have landed; the trial then takes what the store says.
// A seeded PRNG picks the operations and kill times: a failing seed can be run again.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainIdFor } from '../../src/drivers/driver.ts';
import { ProcessDriver } from '../../src/drivers/process/process-driver.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import { unmountUnder } from '../unmount-under.ts';
import { aliveTogether, describePids, takeCensus } from './domain-census.ts';
import { startXenosd, type XenosdProcess } from './xenosd-process.ts';

const NS = 'default';
const SI = `/apis/xenos.io/v1alpha1/namespaces/${NS}/serviceinstances`;
const ST = `/apis/xenos.io/v1alpha1/namespaces/${NS}/servicetemplates`;
const SERVICE = 'sleep';

export interface CrashTrialsInit {
  trials: number;
  seed?: number;
  /** Instances alive at once, at most. Default 6. */
  maxInstances?: number;
  /** The kill comes this long after the trial's workload starts, uniformly. Default [50, 1500] ms. */
  killWindowMs?: [number, number];
  /** Concurrent clients. Default 3. */
  clients?: number;
  settleTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface CrashTrialsReport {
  trials: number;
  seed: number;
  acknowledged: number;
  lost: number;
  duplicates: number;
  unadopted: number;
  /** Trials whose restarted daemon did not bring every instance to its desired state in time. */
  unsettled: number;
  /** Per trial: from spawning the new xenosd until it served its API; from then until every domain was
   *  as its instance wants it (settled trials only). */
  restartMs: number[];
  settleMs: number[];
  /** Kills that came while API calls of each kind were in flight; less than a second after a write that
   *  starts a domain (a create, runStrategy Always) or stops one (a delete, Halted), so with those
   *  reconciles under way; and within 600 ms of a restart, while the new daemon adopts its domains. */
  killedDuring: {
    creates: number;
    patches: number;
    deletes: number;
    domainStarts: number;
    domainStops: number;
    adoption: number;
  };
  problems: string[];
}

interface Tracked {
  name: string;
  uid?: string;
  /** create/delete acknowledged; delete sent (in flight or acknowledged). */
  created: boolean;
  deleteSent: boolean;
  deleted: boolean;
  gen: number;
  strategy: 'Always' | 'Halted';
  /** An op in flight on this object (one at a time); its kind. */
  busy?: 'create' | 'patch' | 'delete';
}

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isReady = (si: ServiceInstance) =>
  si.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

export async function runCrashTrials(init: CrashTrialsInit): Promise<CrashTrialsReport> {
  const seed = init.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = prng(seed);
  const log = init.log ?? (() => {});
  const [killMin, killMax] = init.killWindowMs ?? [50, 1500];
  const maxInstances = init.maxInstances ?? 6;
  const root = mkdtempSync(join(tmpdir(), 'xenos-crash-trials-'));
  const dataDir = join(root, 'data');
  const marker = `XENOS_CRASH_TRIAL=${root}`;
  const image = join(root, 'image');
  mkdirSync(image);
  writeFileSync(join(image, 'README'), 'a domain that sleeps\n');
  const report: CrashTrialsReport = {
    trials: 0,
    seed,
    acknowledged: 0,
    lost: 0,
    duplicates: 0,
    unadopted: 0,
    unsettled: 0,
    restartMs: [],
    settleMs: [],
    killedDuring: { creates: 0, patches: 0, deletes: 0, domainStarts: 0, domainStops: 0, adoption: 0 },
    problems: [],
  };
  const problem = (trial: number, what: string) => report.problems.push(`trial ${trial}: ${what}`);
  const objects = new Map<string, Tracked>();
  let next = 0;
  const start = () =>
    startXenosd({ dataDir, hostName: 'crash', args: ['--driver', 'process', '--host-timeout', '5s'] });
  let xd: XenosdProcess = await start();
  const json = (res: Response) => res.json() as Promise<any>;

  try {
    const template = await xd.api(ST, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceTemplate',
        metadata: { name: 'sleeper' },
        spec: {
          image: { path: image, format: 'directory' },
          process: { command: [SERVICE, '86400'], env: [{ name: 'XENOS_CRASH_TRIAL', value: root }] },
        },
      }),
    });
    if (template.status !== 201)
      throw new Error(`creating the template: ${template.status} ${await template.text()}`);

    for (let trial = 1; trial <= init.trials; trial++) {
      // --- the workload, and the kill at a random moment in it
      const killAfter = killMin + rand() * (killMax - killMin);
      const acks: { at: number; starts: boolean }[] = [];
      let killed = false;
      const api = xd.api;
      const op = async (t: Tracked, kind: 'create' | 'patch' | 'delete', call: () => Promise<boolean>) => {
        t.busy = kind;
        try {
          if (await call()) {
            report.acknowledged++;
            acks.push({ at: Date.now(), starts: kind !== 'delete' && t.strategy === 'Always' });
          }
        } catch {
          // the daemon died under the call: not acknowledged
        } finally {
          if (!killed) t.busy = undefined;
        }
      };
      const create = (t: Tracked) =>
        op(t, 'create', async () => {
          const res = await api(SI, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              apiVersion: 'xenos.io/v1alpha1',
              kind: 'ServiceInstance',
              metadata: { name: t.name, labels: { gen: '0' } },
              spec: { templateRef: { name: 'sleeper' }, runStrategy: t.strategy },
            }),
          });
          if (res.status !== 201) return false;
          t.uid = (await json(res)).metadata.uid;
          t.created = true;
          return true;
        });
      const patch = (t: Tracked) =>
        op(t, 'patch', async () => {
          const gen = t.gen + 1;
          const strategy = rand() < 0.3 ? (t.strategy === 'Always' ? 'Halted' : 'Always') : t.strategy;
          const res = await api(`${SI}/${t.name}`, {
            method: 'PATCH',
            headers: { 'content-type': 'application/merge-patch+json' },
            body: JSON.stringify({
              metadata: { labels: { gen: String(gen) } },
              spec: { runStrategy: strategy },
            }),
          });
          if (res.status !== 200) return false;
          t.gen = gen;
          t.strategy = strategy;
          return true;
        });
      const remove = (t: Tracked) =>
        op(t, 'delete', async () => {
          t.deleteSent = true;
          const res = await api(`${SI}/${t.name}`, { method: 'DELETE' });
          if (res.status !== 200 && res.status !== 202) return false;
          t.deleted = true;
          return true;
        });
      const client = async () => {
        while (!killed) {
          const live = [...objects.values()].filter((t) => !t.deleteSent);
          const idle = live.filter((t) => !t.busy && t.created);
          const r = rand();
          if (live.length < maxInstances && (r < 0.45 || idle.length === 0)) {
            const t: Tracked = {
              name: `t${trial}-${next++}`,
              created: false,
              deleteSent: false,
              deleted: false,
              gen: 0,
              strategy: rand() < 0.85 ? 'Always' : 'Halted',
            };
            objects.set(t.name, t);
            await create(t);
          } else if (idle.length > 0) {
            const t = idle[Math.floor(rand() * idle.length)];
            await (r < 0.75 ? patch(t) : remove(t));
          }
          // A little think time, so kills land in every stage of the reconciles the writes start.
          await new Promise((r2) => setTimeout(r2, rand() * 100));
        }
      };
      const workload = Array.from({ length: init.clients ?? 3 }, () => client());
      await new Promise((r) => setTimeout(r, killAfter));
      killed = true;
      xd.child.kill('SIGKILL');
      const killAt = Date.now();
      const inFlight = [...objects.values()].filter((t) => t.busy).map((t) => t.busy!);
      if (inFlight.includes('create')) report.killedDuring.creates++;
      if (inFlight.includes('patch')) report.killedDuring.patches++;
      if (inFlight.includes('delete')) report.killedDuring.deletes++;
      const recent = acks.filter((a) => killAt - a.at < 1000);
      if (recent.some((a) => a.starts)) report.killedDuring.domainStarts++;
      if (recent.some((a) => !a.starts)) report.killedDuring.domainStops++;
      await xd.exited;
      await Promise.all(workload);

      // --- restart on the same data dir; one trial in four kills it again while it adopts its domains
      const restartStarted = Date.now();
      xd = await start();
      const restartMs = Date.now() - restartStarted;
      report.restartMs.push(restartMs);
      const again = rand() < 0.25;
      if (again) {
        await new Promise((r) => setTimeout(r, rand() * 600));
        xd.child.kill('SIGKILL');
        await xd.exited;
        report.killedDuring.adoption++;
        xd = await start();
      }
      report.trials++;

      // --- acknowledged writes
      let lostHere = 0;
      const listed = new Map<string, ServiceInstance>(
        ((await json(await xd.api(SI))).items as ServiceInstance[]).map((i) => [i.metadata.name, i]),
      );
      for (const t of objects.values()) {
        const obj = listed.get(t.name);
        const inFlight = t.busy;
        t.busy = undefined;
        const lost = (what: string) => {
          lostHere++;
          problem(trial, `${t.name}: ${what}`);
        };
        if (t.deleted) {
          if (obj && !obj.metadata.deletionTimestamp) lost('its delete was acknowledged, yet it is back');
        } else if (t.created && !t.deleteSent) {
          if (!obj) lost('its create was acknowledged, yet it is gone');
          else if (obj.metadata.uid !== t.uid) lost(`its uid changed from ${t.uid} to ${obj.metadata.uid}`);
        }
        if (obj) {
          const gen = Number(obj.metadata.labels?.gen ?? -1);
          if (gen < t.gen) lost(`label gen=${t.gen} was acknowledged, the store has ${gen}`);
          const strategy = obj.spec?.runStrategy as Tracked['strategy'];
          if (inFlight !== 'patch' && strategy !== t.strategy)
            lost(`runStrategy ${t.strategy} was acknowledged, the store has ${strategy}`);
          // Take what landed of the writes in flight.
          const deleting = obj.metadata.deletionTimestamp !== undefined;
          Object.assign(t, { created: true, uid: obj.metadata.uid, gen, strategy });
          Object.assign(t, { deleteSent: deleting, deleted: deleting });
        } else {
          objects.delete(t.name);
        }
      }
      report.lost += lostHere;

      // --- the domains, while the restarted daemon settles
      const settleStarted = Date.now();
      const seenDuplicate = new Set<string>();
      let settled = false;
      let last = { unadopted: [] as string[], missing: [] as string[] };
      while (Date.now() - settleStarted < (init.settleTimeoutMs ?? 30_000)) {
        const census = await takeCensus(dataDir, marker, SERVICE);
        for (const [uid, pids] of census.processes) {
          const together = pids.length > 1 ? await aliveTogether(pids) : [];
          if (together.length > 1) seenDuplicate.add(`${uid}: processes ${await describePids(together)}`);
        }
        for (const [uid, ids] of census.domains)
          if (ids.length > 1) seenDuplicate.add(`${uid}: driver domains ${ids.join(', ')}`);
        const items = (await json(await xd.api(SI))).items as ServiceInstance[];
        const want = new Map(
          items
            .filter((i) => !i.metadata.deletionTimestamp && i.spec?.runStrategy === 'Always')
            .map((i) => [i.metadata.uid!, i]),
        );
        const unadopted: string[] = [];
        const whose = (uid: string) => {
          const i = items.find((x) => x.metadata.uid === uid);
          if (!i) return 'its instance is gone';
          const state = i.metadata.deletionTimestamp ? 'being deleted' : `${i.spec?.runStrategy}`;
          return `instance ${i.metadata.name}, ${state}, status.domainId ${i.status?.domainId ?? 'unset'}`;
        };
        for (const [uid, pids] of census.processes) {
          const owner = want.get(uid);
          const id = owner && domainIdFor({ namespace: NS, name: owner.metadata.name, uid });
          const listed = census.domains.get(uid) ?? [];
          if (!owner || owner.status?.domainId !== id || !listed.includes(id!))
            unadopted.push(
              `${uid} (pids ${pids.join(', ')}; ${whose(uid)}; the driver lists ${listed.join(', ') || 'no running domain'})`,
            );
        }
        for (const [uid, ids] of census.domains)
          if (!want.has(uid)) unadopted.push(`${uid} (driver domain ${ids.join(', ')} runs; ${whose(uid)})`);
        const missing = [...want.values()]
          .filter((i) => !census.processes.has(i.metadata.uid!) || !isReady(i))
          .map((i) => i.metadata.name);
        const deleting = items.filter((i) => i.metadata.deletionTimestamp).map((i) => i.metadata.name);
        last = { unadopted, missing: [...missing, ...deleting.map((n) => `${n} (still deleting)`)] };
        if (unadopted.length === 0 && last.missing.length === 0) {
          settled = true;
          report.settleMs.push(Date.now() - settleStarted);
          break;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
      report.duplicates += seenDuplicate.size;
      for (const d of seenDuplicate) problem(trial, `two live domains for instance ${d}`);
      report.unadopted += last.unadopted.length;
      for (const u of last.unadopted) problem(trial, `domain not adopted by a live instance: ${u}`);
      if (!settled) {
        report.unsettled++;
        problem(trial, `not settled: ${last.missing.join(', ') || 'unadopted domains remain'}`);
      }
      log(
        `trial ${trial}: killed after ${Math.round(killAfter)} ms (in flight: ${inFlight.join(', ') || 'nothing'}` +
          `${again ? '; killed again while adopting' : ''}); ` +
          `restart ${restartMs} ms; settled ${settled ? `in ${Date.now() - settleStarted} ms` : 'NOT'}; ` +
          `instances ${[...objects.values()].filter((t) => !t.deleted).length}; lost ${lostHere}, ` +
          `duplicates ${seenDuplicate.size}, unadopted ${last.unadopted.length}`,
      );
    }
  } finally {
    await cleanUp(xd, dataDir, marker).catch((err) =>
      report.problems.push(`cleanup: ${(err as Error).message}`),
    );
    unmountUnder(root); // the domains' overlays, when root
    rmSync(root, { recursive: true, force: true });
  }
  return report;
}

/** Deletes every instance and waits until no domain process is left; then stops xenosd. As a last
 *  resort, destroys what the driver still lists and kills what /proc still shows of this run. */
async function cleanUp(xd: XenosdProcess, dataDir: string, marker: string): Promise<void> {
  try {
    if (xd.child.exitCode === null && xd.child.signalCode === null) {
      const items = ((await (await xd.api(SI)).json()) as { items: ServiceInstance[] }).items;
      for (const i of items) await xd.api(`${SI}/${i.metadata.name}`, { method: 'DELETE' });
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const left = ((await (await xd.api(SI)).json()) as { items: unknown[] }).items.length;
        const census = await takeCensus(dataDir, marker, SERVICE);
        if (left === 0 && census.processes.size === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await xd.stop();
    const driver = new ProcessDriver({}, { dataDir, cgroups: false });
    for (const d of await driver.list()) await driver.destroy(d.id);
    for (const pids of (await takeCensus(dataDir, marker, SERVICE)).processes.values())
      for (const pid of pids) process.kill(pid, 'SIGKILL');
  }
}
