// The paper's scenario end to end (manifests/hadoop/, process driver) on four real xenosd processes: a
// MapReduce master and a deployment of workers that find it through Xenos discovery. A word count runs
// to the exact counts; then a π estimation runs, and mid-job the master's host dies (xenosd and every
// process of its domains, kill -9). The master fails over to another host and starts fresh, the job's
// client (image/job.mjs) finds it and submits the job again, the workers find it too and hand it the map
// outputs they hold, and the job completes with exactly the result the same job gives in one process.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
// @ts-expect-error: the scenario's own JavaScript module (no types), the code the workers run
import { runLocally } from '../../manifests/hadoop/image/mapreduce.mjs';
import { killAllCtl } from '../cli/run-xenosctl.ts';
import { copyHadoopManifests, HADOOP, HADOOP_NS, mapsDone, runJob } from './hadoop-job.ts';
import { type ClusterHost, ctl, readyOf, TestCluster, waitFor } from './harness.ts';

const NS = HADOOP_NS;
const DOWN_S = 5;
const PI = { type: 'pi', maps: 32, samples: 10_000_000 };

const cluster = new TestCluster({ hostTimeout: '2s' });
const dir = mkdtempSync(join(tmpdir(), 'xenos-hadoop-'));
const jobs: ChildProcess[] = [];
const job = (via: ClusterHost, args: string[], onProgress?: (stderr: string) => void) => {
  const run = runJob(via, args, onProgress);
  jobs.push(run.child);
  return run.done;
};

beforeAll(async () => {
  await cluster.startHosts(['a', 'b', 'c', 'd']);
  // The scenario's manifests, with four workers and failover after DOWN_S (not 10 s).
  copyHadoopManifests(dir, { replicas: 4, maxPerHost: 2, hostDownSeconds: DOWN_S });
}, 90_000);

afterAll(async () => {
  for (const j of jobs) j.kill('SIGKILL');
  killAllCtl();
  await cluster.cleanup();
  rmSync(dir, { recursive: true, force: true });
}, 90_000);

/** The last lines of every scenario instance's log (for a failure's message). */
async function logs(via: ClusterHost): Promise<string> {
  const out: string[] = [];
  for (const i of (await cluster.json(via, `${NS}/serviceinstances`)).items) {
    const r = await ctl(via, ['logs', '-n', 'hadoop', '--tail', '15', i.metadata.name]);
    out.push(`--- ${i.metadata.name} on ${i.spec.host}\n${r.stdout}${r.stderr}`);
  }
  return out.join('\n');
}

it('runs the jobs to their exact results, and survives the death of the master host mid-job', async () => {
  const a = cluster.host('a');
  const applied = await ctl(a, ['apply', '-f', dir]);
  expect(applied.code, applied.stderr).toBe(0);
  const master = await waitFor(
    async () => {
      const m = await cluster.json(a, `${NS}/serviceinstances/hadoop-master`);
      return readyOf(m) === 'True' ? m : undefined;
    },
    'the master Ready',
    90_000,
  );
  await waitFor(
    async () => (await cluster.json(a, `${NS}/servicedeployments/hadoop-worker`)).status?.readyReplicas === 4,
    '4 workers Ready',
    90_000,
  );
  const masterHost: string = master.spec.host;
  const via = cluster.hosts.find((h) => h.name !== masterHost)!;

  // A word count to its exact counts.
  const input = join(HADOOP, 'input', 'hosting.txt');
  const wc = await job(via, ['wordcount', '--maps', '4', input, '--timeout', '120']);
  expect(wc.code, `${wc.stderr}\n${await logs(via)}`).toBe(0);
  const counted = JSON.parse(wc.stdout);
  const text = readFileSync(input, 'utf8');
  expect(counted.result).toEqual(runLocally({ type: 'wordcount', maps: 4, text }));
  expect(counted.result.counts.host).toBe(7);

  // π, with the master's host killed once a few maps are done.
  let killedAt = 0;
  let killing: Promise<void> | undefined;
  let masterBack: Promise<number> | undefined;
  const victim = cluster.host(masterHost);
  const pi = job(
    via,
    ['pi', '--maps', String(PI.maps), '--samples', String(PI.samples), '--timeout', '240'],
    (stderr) => {
      if (!killing && mapsDone(stderr) >= 4) {
        killedAt = Date.now();
        killing = cluster.killHost(victim);
        masterBack = waitFor(
          async () => {
            const m = await cluster.json(via, `${NS}/serviceinstances/hadoop-master`);
            return m.spec.host !== masterHost && readyOf(m) === 'True' ? Date.now() : undefined;
          },
          'the master Ready on another host',
          60_000,
        );
      }
    },
  );
  const ended = await pi;
  const endedAt = Date.now();
  await killing;
  expect(killedAt, `the job ended before the kill: ${ended.stderr}`).toBeGreaterThan(0);
  expect(ended.code, `${ended.stderr}\n${await logs(via)}`).toBe(0);
  const out = JSON.parse(ended.stdout);
  expect(ended.stderr).toMatch(/lost the master hadoop-master on \S+/);
  expect(out.masters, `masters ${JSON.stringify(out.masters)}\n${ended.stderr}`).toHaveLength(2);
  expect(out.masters[0]).toBe(`hadoop-master on ${masterHost}`);
  expect(out.masters[1]).not.toBe(out.masters[0]);
  // The workers handed the new master the outputs they held from before the kill.
  expect(out.recovered).toBeGreaterThan(0);
  const moved = await cluster.json(via, `${NS}/serviceinstances/hadoop-master`);
  expect(moved.spec.host).not.toBe(masterHost);
  expect(moved.metadata.uid).toBe(master.metadata.uid);
  expect(out.result).toEqual(runLocally(PI));
  expect(Math.abs(out.result.pi - Math.PI)).toBeLessThan(0.001);
  const back = (await masterBack!) - killedAt;
  console.log(
    `hadoop scenario: pi over ${PI.maps} maps in ${out.seconds} s, the master's host (${masterHost}) killed at ${(out.seconds - (endedAt - killedAt) / 1000).toFixed(1)} s, the master Ready elsewhere ${(back / 1000).toFixed(1)} s later (hostDownSeconds ${DOWN_S}); ${out.recovered} maps recovered from workers; result ${out.result.pi}`,
  );
}, 360_000);
