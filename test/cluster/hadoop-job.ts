// What the Hadoop scenario's test and bench/hadoop-scenario.ts share: manifests/hadoop copied with its
// worker count, spread and failover delay set, and a run of its job client (image/job.mjs) as a real
// process against one host's API.

import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const HADOOP = new URL('../../manifests/hadoop/', import.meta.url).pathname;
/** The scenario's API path (its objects live in the namespace `hadoop`). */
export const HADOOP_NS = '/apis/xenos.io/v1alpha1/namespaces/hadoop';

/** Copies the scenario's templates, master and workers (and their image) into `dir`, with `replicas`
 *  workers, at most `maxPerHost` per host, failing over after `hostDownSeconds`. */
export function copyHadoopManifests(
  dir: string,
  opts: { replicas: number; maxPerHost: number; hostDownSeconds: number },
): void {
  for (const f of ['templates.yaml', 'master.yaml', 'workers.yaml', 'image'])
    cpSync(join(HADOOP, f), join(dir, f), { recursive: true });
  for (const f of ['master.yaml', 'workers.yaml']) {
    const text = readFileSync(join(dir, f), 'utf8')
      .replace(/hostDownSeconds: \d+/, `hostDownSeconds: ${opts.hostDownSeconds}`)
      .replace(/replicas: \d+/, `replicas: ${opts.replicas}`)
      .replace(/maxPerHost: \d+/, `maxPerHost: ${opts.maxPerHost}`);
    writeFileSync(join(dir, f), text);
  }
}

export interface JobRun {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Runs image/job.mjs against `api`; `onProgress` sees its stderr so far each time more comes. */
export function runJob(
  api: { url: string; token: string },
  args: string[],
  onProgress: (stderr: string) => void = () => {},
): JobRun {
  const child = spawn(process.execPath, [join(HADOOP, 'image', 'job.mjs'), ...args], {
    env: { ...process.env, XENOS_SERVER: api.url, XENOS_TOKEN: api.token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
    onProgress(stderr);
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

/** The highest "N/M maps done" a job client's stderr shows. */
export function mapsDone(stderr: string): number {
  return Math.max(0, ...[...stderr.matchAll(/(\d+)\/\d+ maps done/g)].map((m) => Number(m[1])));
}
