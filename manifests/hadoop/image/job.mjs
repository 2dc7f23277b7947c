#!/usr/bin/env node
// Runs one job of the Hadoop scenario from outside the cluster, as `hadoop jar` would: finds the master
// through the Xenos API's discover endpoint, submits the job, follows it to the end and prints its
// result as JSON on stdout (progress on stderr). When the master is lost (its host died), it finds the
// master again — failed over to another host — and submits the same job again (the same id): the
// workers hand the new master the map outputs they still hold, and the job completes.
//
//   node job.mjs pi --maps 32 --samples 2000000
//   node job.mjs wordcount --maps 8 FILE...
// Options: --server URL (env XENOS_SERVER), --token T (env XENOS_TOKEN) — by default those of the xenosd
//          whose data dir is XENOS_DATA_DIR (./.xenos), as xenosctl —, --namespace NS (default hadoop),
//          --master-type TYPE (default hadoop-master), --timeout SECONDS (default 600).

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jobId } from './mapreduce.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    server: { type: 'string', default: process.env.XENOS_SERVER },
    token: { type: 'string', default: process.env.XENOS_TOKEN },
    namespace: { type: 'string', default: 'hadoop' },
    'master-type': { type: 'string', default: 'hadoop-master' },
    maps: { type: 'string' },
    samples: { type: 'string', default: '2000000' },
    timeout: { type: 'string', default: '600' },
  },
});

function fail(message) {
  console.error(`job: ${message}`);
  process.exit(1);
}

const [type, ...files] = positionals;
if (type !== 'pi' && type !== 'wordcount') fail('usage: job.mjs pi|wordcount [--maps N] [--samples N] [FILE...]');
// As xenosctl: else the API and admin token of the xenosd whose data dir is XENOS_DATA_DIR (default ./.xenos).
const dataDir = process.env.XENOS_DATA_DIR || '.xenos';
const fromDataDir = (file) => {
  try {
    return readFileSync(join(dataDir, file), 'utf8').trim();
  } catch {
    return undefined;
  }
};
if (!values.server && fromDataDir('api.addr')) {
  const addr = fromDataDir('api.addr');
  values.server = /^https?:\/\//.test(addr) ? addr : `http://${addr}`;
  // A self-signed API (npm start's hosts): trust its certificate, as xenosctl does. Node reads extra CAs
  // only at start, so run again with them.
  const cert = join(dataDir, 'tls.crt');
  if (values.server.startsWith('https:') && existsSync(cert) && !process.env.NODE_EXTRA_CA_CERTS) {
    const again = spawnSync(process.execPath, process.argv.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert },
    });
    process.exit(again.status ?? 1);
  }
}
values.token ||= fromDataDir('admin.token');
if (!values.server || !values.token)
  fail(`give --server and --token (or XENOS_SERVER and XENOS_TOKEN, or XENOS_DATA_DIR; ${dataDir} has no api.addr and admin.token)`);
const spec =
  type === 'pi'
    ? { type, maps: Number(values.maps ?? 32), samples: Number(values.samples) }
    : { type, maps: Number(values.maps ?? 8), text: files.map((f) => readFileSync(f, 'utf8')).join('\n') };
if (type === 'wordcount' && files.length === 0) fail('wordcount needs at least one FILE');
const id = jobId(spec);
const deadline = Date.now() + Number(values.timeout) * 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function discoverMaster() {
  const url = `${values.server.replace(/\/$/, '')}/apis/xenos.io/v1alpha1/namespaces/${values.namespace}/discover/${values['master-type']}`;
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${values.token}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`discover: HTTP ${res.status} ${await res.text()}`);
  // Each item is a live, Ready instance of the type; its endpoints are URLs or host:port.
  const item = ((await res.json()).items ?? []).find((i) => i.endpoints.length > 0);
  if (!item) return undefined;
  const e = item.endpoints[0];
  return { url: /^https?:\/\//.test(e) ? e : `http://${e}/`, where: `${item.instance} on ${item.host}` };
}

async function call(master, method, path, body) {
  const res = await fetch(new URL(path, master.url), {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(answer.error ?? `HTTP ${res.status}`), { status: res.status });
  return answer;
}

const started = Date.now();
const masters = [];
let master;
let last = '';
while (Date.now() < deadline) {
  try {
    if (!master) {
      master = await discoverMaster();
      if (!master) {
        await sleep(300);
        continue;
      }
      // Found again where it was lost (discovery still lists it until its host is found dead): not a switch.
      if (masters.at(-1) !== master.where) masters.push(master.where);
      console.error(`job ${id}: master ${master.where}; submitting`);
      await call(master, 'POST', 'jobs', spec);
    }
    const s = await call(master, 'GET', `jobs/${id}`);
    const line = `job ${id}: ${s.done}/${s.maps} maps done${s.recovered ? ` (${s.recovered} recovered from workers)` : ''}`;
    if (line !== last) console.error((last = line));
    if (s.state === 'done') {
      const seconds = (Date.now() - started) / 1000;
      console.log(JSON.stringify({ job: id, type, seconds, masters, recovered: s.recovered, result: s.result }));
      process.exit(0);
    }
    await sleep(200);
  } catch (err) {
    if (err.status === 400) fail(err.message);
    if (master) console.error(`job ${id}: lost the master ${master.where} (${err.message}); looking for it again`);
    master = undefined;
    await sleep(300);
  }
}
fail(`job ${id} did not finish within ${values.timeout} s`);
