// Replication traffic between real xenosd processes (three hosts, p2p on 127.0.0.1): each write travels
// to each other host about once — the writer pushes it to every live member and no receiver passes it on
// — as every host's own counters at GET /metrics show (admin only). Anti-entropy catching a host up after
// a partition is tested in partition.test.ts and, counted row by row, in test/store/replication-fanout.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterHost, parked, SI, TestCluster, waitFor } from './harness.ts';

interface Counters {
  writes: number;
  sent: number;
  received: number[];
}

describe('replication fan-out between real xenosd', () => {
  const cluster = new TestCluster({ hostTimeout: '5s' });
  let hosts: ClusterHost[];

  beforeAll(async () => {
    hosts = await cluster.startHosts(['a', 'b', 'c']);
  }, 90_000);

  afterAll(() => cluster.cleanup(), 60_000);

  async function counters(): Promise<Counters> {
    const out: Counters = { writes: 0, sent: 0, received: [] };
    for (const h of hosts) {
      const res = await h.api('/metrics');
      expect(res.status).toBe(200);
      const text = await res.text();
      const get = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
      out.writes += get('xenos_replication_local_writes_total');
      out.sent += get('xenos_replication_rows_pushed_total') + get('xenos_replication_rows_synced_total');
      out.received.push(get('xenos_replication_rows_received_total'));
    }
    return out;
  }

  /** The counters once they hold still for a second (start-up writes and their pushes done). */
  async function settled(): Promise<Counters> {
    let last = await counters();
    return waitFor(
      async () => {
        await new Promise((r) => setTimeout(r, 1000));
        const now = await counters();
        const still = now.sent === last.sent && now.writes === last.writes;
        last = now;
        return still ? now : undefined;
      },
      'replication counters to hold still',
      60_000,
    );
  }

  it('sends each write to each other host about once, as the hosts count it', async () => {
    const before = await settled();
    const writes = 12;
    for (let k = 0; k < writes; k++) {
      const name = `fan-${k}`;
      const res = await hosts[k % hosts.length].api(SI, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(parked(name)),
      });
      expect(res.status).toBe(201);
      await waitFor(async () => {
        for (const h of hosts) if ((await h.api(`${SI}/${name}`)).status !== 200) return false;
        return true;
      }, `${name} on every host`);
    }
    const after = await settled();
    const made = after.writes - before.writes;
    // The instances and what the hosts wrote about them (their FailedScheduling events).
    expect(made).toBeGreaterThanOrEqual(writes);
    const others = hosts.length - 1;
    const sentPerWrite = (after.sent - before.sent) / made;
    expect(sentPerWrite).toBeGreaterThanOrEqual(others * 0.9);
    expect(sentPerWrite).toBeLessThanOrEqual(1.5 * others);
    for (const [i, h] of hosts.entries()) {
      const got = after.received[i] - before.received[i];
      // Each host receives the writes the others made, about once each.
      expect(got / made, `rows ${h.name} received per write`).toBeLessThanOrEqual(1.5);
    }
  }, 120_000);

  it('shows the counters only to the admin', async () => {
    const h = hosts[0];
    const anonymous = await fetch(`${h.url}/metrics`);
    expect(anonymous.status).toBe(401);
  });
});
