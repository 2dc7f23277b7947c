// One node of the Hadoop scenario, as $ROLE says: the master (the JobTracker: it holds the jobs, hands
// out map tasks and reduces their outputs) or a worker (a TaskTracker: it finds the master through
// Xenos discovery, pulls tasks from it and runs them). Plain HTTP with JSON, on $PORT.
//
// The master keeps its jobs in memory: when its host dies it is started fresh elsewhere (failover), and
// the job's client submits the job again (the same id, job.mjs does it). Workers keep every map output
// they computed and report them to each new master they meet (the master's `incarnation` changes), so the
// work done before the failover is not lost: only the tasks that were running on the dead host run again.
// A task whose worker goes silent is handed to another after LEASE_MS.
//
// Master:  POST /jobs {type, maps, samples|text} → {id, ...summary}   (the same job again: the same id)
//          GET /jobs/ID → {id, state: running|done, done, maps, recovered, result?}
//          POST /claim {worker, outputs: [{job, task, output}]} → {incarnation, accepted: ["job/task"], task?}
//          POST /done {worker, job, task, output} → {accepted}
// Worker:  GET / → what it did;  both: GET /healthz.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { jobId, jobProblem, map, reduce, splitText, taskInput } from './mapreduce.mjs';

const PORT = Number(process.env.PORT || 8080);
const ROLE = process.env.ROLE;
const NAME = process.env.XENOS_INSTANCE_NAME || `node-${process.pid}`;
const LEASE_MS = Number(process.env.LEASE_MS || 15_000);
const MAX_BODY = 32 * 1024 * 1024;
/** Most map outputs a worker keeps for masters to come. */
const MAX_HELD = 20_000;

function log(message) {
  console.log(`${new Date().toISOString()} ${ROLE} ${NAME}: ${message}`);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error(`body over ${MAX_BODY} bytes`), { status: 413 }));
        req.destroy();
      } else parts.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString('utf8') || '{}'));
      } catch {
        reject(Object.assign(new Error('the body is not JSON'), { status: 400 }));
      }
    });
    req.on('error', reject);
  });
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

function serve(routes) {
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://node');
      if (url.pathname === '/healthz') return send(res, 200, { ok: true });
      for (const [method, pattern, handler] of routes) {
        const m = req.method === method && pattern.exec(url.pathname);
        if (m) return send(res, 200, await handler(req, m));
      }
      send(res, 404, { error: `no ${req.method} ${url.pathname}` });
    } catch (err) {
      send(res, err.status ?? 500, { error: err.message });
    }
  });
  server.listen(PORT, () => log(`listening on ${server.address().port}`));
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
}

function master() {
  const incarnation = randomUUID();
  /** id → { spec, chunks, tasks: [{ state, leaseUntil, output }], done, recovered, started, finished, result } */
  const jobs = new Map();

  const summary = (job) => ({
    id: job.id,
    type: job.spec.type,
    maps: job.spec.maps,
    done: job.done,
    recovered: job.recovered,
    state: job.result ? 'done' : 'running',
    seconds: ((job.finished ?? Date.now()) - job.started) / 1000,
    master: NAME,
    ...(job.result ? { result: job.result } : {}),
  });

  const complete = (job, task, output, recovered) => {
    const t = job.tasks[task];
    if (!t || t.state === 'done') return false;
    t.state = 'done';
    t.output = output;
    job.done++;
    if (recovered) job.recovered++;
    if (job.done === job.spec.maps) {
      job.result = reduce(job.spec.type, job.tasks.map((x) => x.output));
      job.finished = Date.now();
      log(`job ${job.id} done in ${(job.finished - job.started) / 1000} s (${job.recovered} maps recovered from workers)`);
    }
    return true;
  };

  const nextTask = () => {
    const now = Date.now();
    for (const job of jobs.values()) {
      if (job.result) continue;
      const t = job.tasks.findIndex((x) => x.state === 'pending' || (x.state === 'running' && x.leaseUntil < now));
      if (t < 0) continue;
      job.tasks[t].state = 'running';
      job.tasks[t].leaseUntil = now + LEASE_MS;
      return { job: job.id, task: t, type: job.spec.type, input: taskInput(job.spec, t, job.chunks) };
    }
    return undefined;
  };

  serve([
    [
      'POST',
      /^\/jobs$/,
      async (req) => {
        const spec = await readJson(req);
        const problem = jobProblem(spec);
        if (problem) throw Object.assign(new Error(`not a job: ${problem}`), { status: 400 });
        const id = jobId(spec);
        if (!jobs.has(id)) {
          const tasks = Array.from({ length: spec.maps }, () => ({ state: 'pending' }));
          const chunks = spec.type === 'wordcount' ? splitText(spec.text, spec.maps) : [];
          jobs.set(id, { id, spec, chunks, tasks, done: 0, recovered: 0, started: Date.now() });
          log(`job ${id} submitted: ${spec.type}, ${spec.maps} maps`);
        }
        return summary(jobs.get(id));
      },
    ],
    [
      'GET',
      /^\/jobs\/([-a-z0-9]+)$/,
      async (_req, m) => {
        const job = jobs.get(m[1]);
        if (!job) throw Object.assign(new Error(`no job ${m[1]} on this master`), { status: 404 });
        return summary(job);
      },
    ],
    [
      'POST',
      /^\/claim$/,
      async (req) => {
        const body = await readJson(req);
        const accepted = [];
        for (const o of body.outputs ?? []) {
          const job = jobs.get(o.job);
          if (!job) continue; // not submitted (again) yet: the worker offers it later
          complete(job, o.task, o.output, true);
          accepted.push(`${o.job}/${o.task}`);
        }
        return { incarnation, accepted, task: nextTask() ?? null };
      },
    ],
    [
      'POST',
      /^\/done$/,
      async (req) => {
        const o = await readJson(req);
        const job = jobs.get(o.job);
        return { incarnation, accepted: job ? (complete(job, o.task, o.output, false), true) : false };
      },
    ],
  ]);
}

function worker() {
  const api = process.env.XENOS_API;
  const namespace = process.env.XENOS_INSTANCE_NAMESPACE || 'default';
  const masterType = process.env.MASTER_TYPE || 'hadoop-master';
  const token = process.env.XENOS_TOKEN_FILE ? readFileSync(process.env.XENOS_TOKEN_FILE, 'utf8').trim() : '';
  /** "job/task" → { job, task, output, acceptedBy } : every output computed, kept for the next master. */
  const outputs = new Map();
  const stats = { tasks: 0, masters: [], reported: 0 };
  let master;

  const post = async (path, body) => {
    const res = await fetch(new URL(path, master.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  };

  /** The master's jobtracker endpoint, through the Xenos API's discover (with this domain's token). */
  const discover = async () => {
    const res = await fetch(`${api}/apis/xenos.io/v1alpha1/namespaces/${namespace}/discover/${masterType}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`discover ${masterType}: HTTP ${res.status} ${await res.text()}`);
    // Each item is a live, Ready instance of the type; its endpoints are URLs or host:port.
    const found = ((await res.json()).items ?? []).find((i) => i.endpoints.length > 0);
    return found && { url: urlOf(found.endpoints[0]), instance: found.instance, host: found.host };
  };

  const loop = async () => {
    for (;;) {
      try {
        if (!master) {
          master = await discover();
          if (!master) {
            await sleep(500);
            continue;
          }
          log(`found the master ${master.instance} on ${master.host} at ${master.url}`);
          stats.masters.push(`${master.instance}@${master.host}`);
        }
        const offer = [...outputs.values()].filter((o) => o.acceptedBy !== master.incarnation).slice(0, 500);
        const claim = await post('claim', {
          worker: NAME,
          outputs: offer.map(({ job, task, output }) => ({ job, task, output })),
        });
        master.incarnation = claim.incarnation;
        for (const key of claim.accepted) {
          const o = outputs.get(key);
          if (o && o.acceptedBy !== claim.incarnation) {
            o.acceptedBy = claim.incarnation;
            stats.reported++;
          }
        }
        if (!claim.task) {
          await sleep(200);
          continue;
        }
        const { job, task, type, input } = claim.task;
        const output = map(type, job, task, input);
        stats.tasks++;
        const entry = { job, task, output };
        outputs.set(`${job}/${task}`, entry);
        // Bounded: the oldest outputs go first (a Map iterates in insertion order).
        while (outputs.size > MAX_HELD) outputs.delete(outputs.keys().next().value);
        const done = await post('done', { worker: NAME, job, task, output });
        if (done.accepted) entry.acceptedBy = done.incarnation;
      } catch (err) {
        if (master) log(`lost the master ${master.instance} (${err.message}); looking for it again`);
        else log(`no master yet: ${err.message}`);
        master = undefined;
        await sleep(500);
      }
    }
  };

  serve([['GET', /^\/$/, async () => ({ worker: NAME, ...stats, held: outputs.size, master: master?.url ?? null })]]);
  loop();
}

function urlOf(endpoint) {
  return /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}/`;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

if (ROLE === 'master') master();
else if (ROLE === 'worker') worker();
else {
  console.error(`ROLE must be master or worker, not ${JSON.stringify(ROLE)}`);
  process.exit(2);
}
