// Expiring kinds (Events, 1 h by default): an object whose last main write is older than its kind's TTL
// is removed by each host on its own — no tombstone, a DELETED to watchers, its earlier events dropped
// from the watch history — and replication between real Replicators does not bring it back, neither by
// push nor by anti-entropy, from a host that has not swept yet. Objects of other kinds are untouched.

import { afterEach, describe, expect, it } from 'vitest';
import { validateEvent } from '../../src/api/events.ts';
import type { XObject } from '../../src/model/object.ts';
import { MemoryNetwork } from '../../src/store/replication/memory-transport.ts';
import { Replicator } from '../../src/store/replication/replicator.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import type { WatchEvent } from '../../src/store/store.ts';
import { crdValidate, instance, namespaced, TEST_INIT } from './replication-contract.ts';

const HOUR = 3_600_000;
const TTL = { Event: HOUR };
/** Sweeps are driven by the test (expireObjects(now)), not the timer. */
const NO_TIMER = 10 * HOUR;

const opened: SqliteStore[] = [];
const replicators: Replicator[] = [];
afterEach(async () => {
  await Promise.all(replicators.splice(0).map((r) => r.stop()));
  for (const s of opened.splice(0)) s.close();
});

function store(writer: string, wallClock?: () => number): SqliteStore {
  const s = openStore({
    path: ':memory:',
    namespaced,
    writer,
    ttlMs: TTL,
    expirySweepMs: NO_TIMER,
    wallClock,
  });
  opened.push(s);
  return s;
}

function event(name: string): XObject {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: 'default' },
    involvedObject: { kind: 'ServiceInstance', name: 'web', namespace: 'default' },
    reason: 'Started',
    message: 'started',
    type: 'Normal',
  } as XObject;
}

const names = (s: SqliteStore, kind = 'Event') => s.list(kind).items.map((o) => o.metadata.name);

describe('expiring objects on one host', () => {
  it('removes an Event past its TTL without a tombstone, tells watchers, and forgets its history', () => {
    const s = store('a');
    s.create(instance('web'));
    const seen: WatchEvent[] = [];
    s.watch('Event', {}, (ev) => seen.push(ev));
    const start = s.revision();
    s.create(event('old'));
    const later = s.create(event('young'));
    expect(s.expireObjects(Date.now() + 30 * 60_000)).toBe(0);

    expect(s.expireObjects(Date.now() + HOUR + 60_000)).toBe(2);
    expect(names(s)).toEqual([]);
    expect(names(s, 'ServiceInstance')).toEqual(['web']);
    expect(s.replicationRow({ kind: 'Event', namespace: 'default', name: 'old' })).toBeUndefined();
    expect(seen.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED old',
      'ADDED young',
      'DELETED old',
      'DELETED young',
    ]);
    // A watch resuming from before: only the DELETEDs are left of them.
    const replay: WatchEvent[] = [];
    s.watch('Event', { resourceVersion: start }, (ev) => replay.push(ev))();
    expect(replay.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'DELETED old',
      'DELETED young',
    ]);
    expect(Number(s.revision())).toBeGreaterThan(Number(later.metadata.resourceVersion));
  });

  it('counts from the last write: an updated Event (a repeat bumps its count) lives on', () => {
    let clock = Date.now() - 50 * 60_000;
    const s = store('a', () => clock);
    const created = s.create(event('busy'));
    s.create(event('idle'));
    clock = Date.now();
    s.update({ ...created, count: 2 } as XObject);
    expect(s.expireObjects(Date.now() + 20 * 60_000)).toBe(1);
    expect(names(s)).toEqual(['busy']);
  });

  it('sweeps by itself on its timer', async () => {
    const s = openStore({ path: ':memory:', namespaced, writer: 'a', ttlMs: { Event: 200 } });
    opened.push(s);
    s.create(event('short'));
    await expect.poll(() => names(s), { timeout: 5000, interval: 50 }).toEqual([]);
  });
});

/** An anti-entropy exchange started now (syncWith shares one already running, which may predate the
 *  state the test wants synced: wait for that one, then run another). */
async function freshSync(r: Replicator, peer: string): Promise<void> {
  await r.syncWith(peer);
  await r.syncWith(peer);
}

const clocks = { later: 0 };

describe('expiring objects across hosts', () => {
  afterEach(() => {
    clocks.later = 0;
  });

  const validate = (obj: XObject) =>
    obj.kind === 'Event' ? validateEvent(obj as unknown as Record<string, unknown>) : crdValidate(obj);

  /** Two replicating hosts; each clock is the real one plus `later` (time passing in the test). */
  async function pair(bBehind = 0) {
    const network = new MemoryNetwork();
    const a = store('a', () => Date.now() + clocks.later);
    const b = store('b', () => Date.now() + clocks.later - bBehind);
    const init = { ...TEST_INIT, syncIntervalMs: NO_TIMER };
    const ra = new Replicator({ store: a, transport: network.endpoint('a'), validate }, init);
    const rb = new Replicator({ store: b, transport: network.endpoint('b'), validate }, init);
    replicators.push(ra, rb);
    await Promise.all([ra.start(), rb.start()]);
    return { a, b, ra, rb };
  }

  it('each host expires on its own; anti-entropy brings nothing back and ships no tombstones', async () => {
    const { a, b, ra, rb } = await pair();
    a.create(event('e1'));
    await expect.poll(() => names(b)).toEqual(['e1']);
    // Two hours later A sweeps first; B has not yet: B's copy must not come back to A, either way round.
    clocks.later = 2 * HOUR;
    expect(a.expireObjects()).toBe(1);
    await freshSync(ra, 'b');
    await freshSync(rb, 'a');
    expect(names(a)).toEqual([]);
    expect(names(b)).toEqual(['e1']);
    // Then B's sweep, by the same timestamps.
    expect(b.expireObjects()).toBe(1);
    await freshSync(rb, 'a');
    expect([names(a), names(b)]).toEqual([[], []]);
    expect([...a.replicationVersions(), ...b.replicationVersions()]).toEqual([]);
  });

  it('a host whose copy is already past the TTL cannot push it to one that dropped it', async () => {
    // B's clock says everything it writes happened two hours ago: its Event is expired on arrival.
    const { a, b, ra, rb } = await pair(2 * HOUR);
    b.create(event('stale'));
    b.create(instance('web'));
    // Pushed together, in order: once the instance is on A, A has seen the Event too.
    await expect.poll(() => names(a, 'ServiceInstance')).toEqual(['web']);
    await freshSync(ra, 'b');
    await freshSync(rb, 'a');
    expect(names(a)).toEqual([]);
    expect(names(b)).toEqual(['stale']);
  });
});
