// A scrape of /metrics on two real xenosd processes (p2p on 127.0.0.1), parsed as Prometheus text: API
// requests by verb, resource and code with latency, reconciles and queues per controller, instances by
// phase, DHT peers and queries, replication rows and bytes, image bytes, refusal counters by reason — each
// a figure that moved because the test did something, and no label value naming an object.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Family, parseMetrics, total } from '../metrics/prometheus.ts';
import { type ClusterHost, parked, SI, TestCluster, waitFor } from './harness.ts';

describe('/metrics on real xenosd', () => {
  const cluster = new TestCluster({ hostTimeout: '5s' });
  let a: ClusterHost;
  let b: ClusterHost;

  beforeAll(async () => {
    [a, b] = await cluster.startHosts(['metrics-a', 'metrics-b']);
  }, 90_000);

  afterAll(() => cluster.cleanup(), 60_000);

  async function scrape(h: ClusterHost): Promise<Map<string, Family>> {
    const res = await h.api('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseMetrics(await res.text());
  }

  it('counts what the test did, in Prometheus text', async () => {
    const created = await a.api(SI, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(parked('metered-instance')),
    });
    expect(created.status).toBe(201);
    expect((await a.api(`${SI}/no-such-instance`)).status).toBe(404);
    expect((await fetch(`${a.url}${SI}`)).status).toBe(401);
    await waitFor(async () => (await b.api(`${SI}/metered-instance`)).status === 200, 'the instance on b');

    const onA = await waitFor(async () => {
      const f = await scrape(a);
      return total(f, 'xenos_controller_reconciles_total', { controller: 'scheduler' }) > 0 ? f : undefined;
    }, 'the scheduler to reconcile the instance');
    const requests = (labels: Record<string, string>) => total(onA, 'xenos_api_requests_total', labels);
    expect(requests({ verb: 'create', resource: 'serviceinstances', code: '201' })).toBe(1);
    expect(requests({ verb: 'get', resource: 'serviceinstances', code: '404' })).toBe(1);
    expect(requests({ code: '401' })).toBeGreaterThanOrEqual(1);
    expect(
      total(onA, 'xenos_api_request_duration_seconds', { verb: 'create', resource: 'serviceinstances' }),
    ).toBe(1);
    const queues = onA.get('xenos_workqueue_depth')?.samples.map((s) => s.labels.controller);
    expect(queues).toEqual(
      expect.arrayContaining(['scheduler', 'host', 'serviceinstance', 'servicetemplate', 'servicemigration']),
    );
    expect(onA.get('xenos_service_instances')?.samples).toHaveLength(9);
    expect(total(onA, 'xenos_live_hosts')).toBe(2);
    expect(onA.get('xenos_p2p_handshakes_refused_total')?.samples.length).toBeGreaterThan(0);
    expect(onA.has('xenos_image_served_bytes_total')).toBe(true);
    expect(total(onA, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    // What the overlay did: b learnt the instance from a, in rows and bytes, and both use the DHT.
    const onB = await waitFor(async () => {
      const f = await scrape(b);
      return total(f, 'xenos_dht_queries_total') > 0 ? f : undefined;
    }, 'b to query the DHT');
    expect(total(onB, 'xenos_dht_peers')).toBeGreaterThanOrEqual(1);
    expect(total(onB, 'xenos_dht_query_duration_seconds')).toBe(total(onB, 'xenos_dht_queries_total'));
    expect(total(onB, 'xenos_replication_rows_received_total')).toBeGreaterThan(0);
    expect(total(onB, 'xenos_replication_received_bytes_total')).toBeGreaterThan(0);
    expect(total(onA, 'xenos_replication_sent_bytes_total')).toBeGreaterThan(0);

    // Bounded labels: no object's name is ever a label value.
    for (const f of [...onA.values(), ...onB.values()])
      for (const s of f.samples) expect(Object.values(s.labels).join(' ')).not.toMatch(/metered|no-such/);
  }, 60_000);
});
