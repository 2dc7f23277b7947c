// Benchmark: hostile API input against a real xenosd over HTTP on loopback, while a prober keeps asking
// /healthz. Each attack runs twice: one client at a time (how fast one request is refused, p50/p99), then
// CONCURRENCY clients at once (refusals per second); /healthz latency during each is printed next to
// idle, from the same run. Attacks: a 1 KiB YAML alias bomb (bound: refused in ≤ 10 ms p99), JSON patch
// copy amplification, JSON nested 100,000 deep, an object over MAX_OBJECT_BYTES, an Event flood from an
// instance token (accepted vs refused, against what its token bucket allows), and, as the cost the admin
// can still impose, a valid 3 MiB YAML body of 1.5 million numbers (decoded off the API's thread).
//
//   node --no-warnings bench/hostile-input.ts [requests=200] [concurrency=4] [floodSeconds=5]

import { loadavg } from 'node:os';
import { EVENT_RATE_LIMIT } from '../src/api/input-limits.ts';
import { decodeBody } from '../src/api/request-body.ts';
import { MAX_OBJECT_BYTES } from '../src/store/limits.ts';
import { aliasBombOfSize, copyAmplification, deepJson } from '../test/api/hostile-bodies.ts';
import { seedInstanceToken } from '../test/daemon/instance-token.ts';
import { removeDataDir, startXenosd, tempDataDir } from '../test/daemon/xenosd-process.ts';
import { type Figure, printFigure } from './lib/figures.ts';
import { summarise } from './lib/stats.ts';

const BENCH = 'hostile-input';
const REQUESTS = Number(process.argv[2] ?? 200);
const CONCURRENCY = Number(process.argv[3] ?? 4);
const FLOOD_SECONDS = Number(process.argv[4] ?? 5);
const BOMB_BOUND_MS = 10;
const NS = '/apis/xenos.io/v1alpha1/namespaces/bench';
const SD = `${NS}/servicedeployments`;
const EVENTS = '/api/v1/namespaces/bench/events';

const dataDir = tempDataDir();
const serviceToken = seedInstanceToken(dataDir, 'bench', 'web');
const xd = await startXenosd({ dataDir, hostName: 'bench' });
const load = () => loadavg()[0].toFixed(1);
const figure = (f: Omit<Figure, 'bench'>) => printFigure({ bench: BENCH, ...f }, 44);

interface Attack {
  send: () => Promise<Response>;
  /** The status every answer must have. */
  status: number;
}

const post = (path: string, body: string, type: string, token = xd.token) =>
  fetch(xd.url + path, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': type },
    body,
  });

/** /healthz latencies, one probe after another, until `during` settles. */
async function probeHealth(during: Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  let done = false;
  const stop = () => {
    done = true;
  };
  during.then(stop, stop);
  while (!done) {
    const t0 = performance.now();
    const res = await fetch(`${xd.url}/healthz`);
    await res.arrayBuffer();
    samples.push(performance.now() - t0);
  }
  return samples;
}

/** `requests` of one attack from `clients` clients at once; each answer's latency. */
async function attack(a: Attack, requests: number, clients: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const client = async () => {
    while (next++ < requests) {
      const t0 = performance.now();
      const res = await a.send();
      await res.arrayBuffer();
      latencies.push(performance.now() - t0);
      if (res.status !== a.status) throw new Error(`expected ${a.status}, got ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return latencies;
}

/** One attack: one client at a time (refusal latency), then CONCURRENCY clients (refusals/s). Figures
 *  are named `label: …` so that the runner's summary table says which attack each is about. */
async function run(label: string, title: string, a: Attack, requests: number, bound?: number): Promise<void> {
  const one = attack(a, requests, 1);
  const h1 = summarise(await probeHealth(one));
  const r = summarise(await one);
  const started = performance.now();
  const many = attack(a, requests, CONCURRENCY);
  const hN = summarise(await probeHealth(many));
  await many;
  const rate = requests / ((performance.now() - started) / 1000);
  console.log(`  ${title}`);
  figure({ name: `${label}: refused p50`, value: r.p50, unit: 'ms', bound });
  figure({
    name: `${label}: refused p99`,
    value: r.p99,
    unit: 'ms',
    bound,
    note: `${r.n} one at a time, load ${load()}`,
  });
  figure({
    name: `${label}: /healthz p99 meanwhile`,
    value: h1.p99,
    unit: 'ms',
    note: `p50 ${h1.p50.toFixed(2)}, ${h1.n} probes`,
  });
  figure({ name: `${label}: refusals/s, ${CONCURRENCY} clients`, value: rate, unit: 'req/s' });
  figure({
    name: `${label}: /healthz p99, ${CONCURRENCY} clients`,
    value: hN.p99,
    unit: 'ms',
    note: `p50 ${hN.p50.toFixed(2)}, ${hN.n} probes, load ${load()}`,
  });
}

/** The work of refusing one body on the server, without HTTP: decodeBody in this process. */
function refusalWork(label: string, body: string, format: 'json' | 'yaml', bound?: number): void {
  const times: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    try {
      decodeBody(Buffer.from(body), format);
    } catch {
      // the refusal being timed
    }
    times.push(performance.now() - t0);
  }
  const t = summarise(times);
  figure({ name: `${label}: decode and refuse p50`, value: t.p50, unit: 'ms', bound });
  figure({
    name: `${label}: decode and refuse p99`,
    value: t.p99,
    unit: 'ms',
    bound,
    note: `${t.n} in process, no HTTP`,
  });
}

/** An instance token posting 1 KB Events as fast as CONCURRENCY clients can for FLOOD_SECONDS. */
async function eventFlood(): Promise<void> {
  const counts = { accepted: 0, refused: 0 };
  let n = 0;
  const started = performance.now();
  const flood = Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() - started < FLOOD_SECONDS * 1000) {
        const event = {
          metadata: { name: `flood-${n++}` },
          involvedObject: { kind: 'ServiceInstance', name: 'web', namespace: 'bench' },
          reason: 'Flood',
          message: 'x'.repeat(1000),
        };
        const res = await post(EVENTS, JSON.stringify(event), 'application/json', serviceToken);
        await res.arrayBuffer();
        if (res.status === 201) counts.accepted++;
        else if (res.status === 429) counts.refused++;
        else throw new Error(`event flood: unexpected ${res.status}`);
      }
    }),
  );
  const health = summarise(await probeHealth(flood));
  await flood;
  const seconds = (performance.now() - started) / 1000;
  const allowed = Math.floor(EVENT_RATE_LIMIT.burst + EVENT_RATE_LIMIT.perSecond * seconds);
  console.log(
    `  Event flood from an instance token, ${seconds.toFixed(1)} s: ${counts.accepted} accepted, ${counts.refused} refused with 429`,
  );
  figure({
    name: 'event flood: answered',
    value: (counts.accepted + counts.refused) / seconds,
    unit: 'req/s',
  });
  figure({
    name: 'event flood: accepted',
    value: counts.accepted,
    unit: 'events',
    bound: allowed,
    note: `the bucket: burst ${EVENT_RATE_LIMIT.burst} + ${EVENT_RATE_LIMIT.perSecond}/s`,
  });
  figure({
    name: 'event flood: /healthz p99 meanwhile',
    value: health.p99,
    unit: 'ms',
    note: `p50 ${health.p50.toFixed(2)}, load ${load()}`,
  });
}

try {
  const loadStart = load();
  const target = {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceDeployment',
    metadata: { name: 'target', namespace: 'bench', annotations: { seed: 'x' } },
    spec: { template: { spec: { templateRef: { name: 'web' } } } },
  };
  if ((await post(SD, JSON.stringify(target), 'application/json')).status !== 201)
    throw new Error('setup failed');

  console.log(`hostile-input: a real xenosd at ${xd.url}; load ${loadStart}`);
  const idle = summarise(await probeHealth(new Promise((r) => setTimeout(r, 2000))));
  figure({ name: '/healthz idle p50', value: idle.p50, unit: 'ms' });
  figure({ name: '/healthz idle p99', value: idle.p99, unit: 'ms', note: `${idle.n} probes` });

  const bomb = aliasBombOfSize(1024);
  const patchBody = JSON.stringify(copyAmplification('/metadata/annotations/a', 'x'.repeat(50_000), 40));
  const deep = deepJson(100_000);
  const parameters = Object.fromEntries(Array.from({ length: 28 }, (_, i) => [`p${i}`, 'v'.repeat(60_000)]));
  const oversized = JSON.stringify({
    ...target,
    metadata: { name: 'big', namespace: 'bench' },
    spec: { template: { spec: { templateRef: { name: 'web' }, parameters } } },
  });
  refusalWork('alias bomb', bomb, 'yaml', BOMB_BOUND_MS);
  await run(
    'alias bomb',
    `YAML alias bomb, ${bomb.length} bytes (413)`,
    { send: () => post(SD, bomb, 'application/yaml'), status: 413 },
    REQUESTS,
    BOMB_BOUND_MS,
  );
  await run(
    'copy amplification',
    'JSON patch: 40 copies of a 50 KB value (400)',
    {
      send: () =>
        fetch(`${xd.url}${SD}/target`, {
          method: 'PATCH',
          headers: { Authorization: `Bearer ${xd.token}`, 'Content-Type': 'application/json-patch+json' },
          body: patchBody,
        }),
      status: 400,
    },
    REQUESTS,
  );
  await run(
    'deep JSON',
    `JSON nested 100,000 deep, ${Math.round(deep.length / 1024)} KiB (400)`,
    { send: () => post(SD, deep, 'application/json'), status: 400 },
    REQUESTS,
  );
  await run(
    'oversized object',
    `object of ${(oversized.length / 1048576).toFixed(2)} MiB, limit ${(MAX_OBJECT_BYTES / 1048576).toFixed(1)} (413)`,
    { send: () => post(SD, oversized, 'application/json'), status: 413 },
    Math.min(REQUESTS, 40),
  );
  await eventFlood();

  // What the admin may still send: valid YAML, 3 MiB, decoded in the API's worker thread.
  const list = `metadata: {name: heavy, namespace: bench}\nspec: [${'1,'.repeat(1_500_000)}1]\n`;
  const heavy = attack({ send: () => post(SD, list, 'application/yaml'), status: 422 }, 3, 1);
  const heavyHealth = summarise(await probeHealth(heavy));
  const heavyTimes = summarise(await heavy);
  console.log('  admin: 3 MiB of YAML, 1.5 million numbers (valid YAML, refused by the schema: 422)');
  figure({
    name: 'admin 3 MiB YAML: answered p50',
    value: heavyTimes.p50,
    unit: 'ms',
    note: `${heavyTimes.n} one at a time`,
  });
  figure({
    name: 'admin 3 MiB YAML: /healthz max meanwhile',
    value: heavyHealth.max,
    unit: 'ms',
    note: `p99 ${heavyHealth.p99.toFixed(1)}, ${heavyHealth.n} probes, load ${load()}`,
  });
  console.log(`  load ${loadStart} -> ${load()}`);
} finally {
  await xd.stop();
  removeDataDir(xd.dataDir);
}
