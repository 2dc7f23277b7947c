// The controller runner against the real SQLite store: what it reconciles and when, retries with
// backoff, terminal errors becoming Stalled, related-kind mapping, requeueAfter and stop() aborting.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log/logger.ts';
import type { XObject } from '../../src/model/object.ts';
import { getCondition } from '../../src/reconcile/conditions.ts';
import { Controller, type ControllerInit } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import { objectKey } from '../../src/reconcile/keys.ts';
import { updateStatus } from '../../src/reconcile/status.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { until } from '../wait.ts';

const quiet = silentLogger.root;

let dir: string;
let store: SqliteStore;
const controllers: Controller[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenos-reconcile-'));
  store = openStore({ path: join(dir, 'store.db'), namespaced: (k) => k !== 'Host', writer: 'host-a' });
});
afterEach(async () => {
  for (const c of controllers.splice(0)) await c.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function widget(name: string, spec: Record<string, unknown> = {}): XObject {
  return { apiVersion: 'xenos.io/v1alpha1', kind: 'Widget', metadata: { name, namespace: 'default' }, spec };
}

function run(init: Omit<ControllerInit, 'kind'> & { kind?: string }): Controller {
  const c = new Controller({ store, log: quiet }, { kind: 'Widget', workers: 2, ...init });
  controllers.push(c);
  c.start();
  return c;
}

/** A reconcile that records the generation it saw in status, like a real controller's observedGeneration. */
async function observe(key: string): Promise<undefined> {
  await updateStatus(store, objectKey('Widget', key), (status, obj) => {
    status.observedGeneration = obj.metadata.generation;
  });
  return undefined;
}

function observed(name: string): number | undefined {
  return store.get({ kind: 'Widget', namespace: 'default', name })?.status?.observedGeneration;
}

describe('Controller', () => {
  it('reconciles objects that exist at start and every later change', async () => {
    store.create(widget('a', { v: 1 }));
    run({ reconcile: observe });
    await until('a observed', () => observed('a') === 1);
    store.create(widget('b'));
    await until('b observed', () => observed('b') === 1);
    const a = store.get({ kind: 'Widget', namespace: 'default', name: 'a' })!;
    store.update({ ...a, spec: { v: 2 } });
    await until('a generation 2 observed', () => observed('a') === 2);
  });

  it('a deleted object is still reconciled (to clean up after it)', async () => {
    const seen: string[] = [];
    store.create(widget('gone'));
    run({
      reconcile: (key) => {
        if (!store.get(objectKey('Widget', key))) seen.push(key);
        return undefined;
      },
    });
    store.delete({ kind: 'Widget', namespace: 'default', name: 'gone' });
    await until('the deletion reconciled', () => seen.includes('default/gone'));
  });

  it('retries a failing reconcile with growing backoff until it succeeds', async () => {
    // Fake time: the backoff is measured on the clock the queue schedules with, not waited for.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      const attempts: number[] = [];
      store.create(widget('flaky'));
      const c = run({
        reconcile: (key) => {
          attempts.push(Date.now());
          if (attempts.length < 4) throw new Error('not yet');
          return observe(key);
        },
      });
      for (let ms = 0; ms < 1000 && observed('flaky') !== 1; ms++) await vi.advanceTimersByTimeAsync(1);
      expect(observed('flaky')).toBe(1);
      // (A fifth attempt may follow: the status write is itself a change.)
      expect(attempts.length).toBeGreaterThanOrEqual(4);
      // 5, 10, 20 ms between attempts: the per-key exponential backoff.
      expect(attempts.slice(1, 4).map((t, i) => t - attempts[i])).toEqual([5, 10, 20]);
      expect(c.retries('default/flaky')).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a terminal error marks the object Stalled and is not retried; a new spec is reconciled', async () => {
    let stalledAttempts = 0;
    let ticks = 0;
    store.create(widget('bad', { ok: false }));
    run({
      reconcile: (key) => {
        if (key === 'default/clock') {
          ticks++;
          return { requeueAfterMs: 20 };
        }
        const obj = store.get(objectKey('Widget', key))!;
        if (!(obj.spec as { ok: boolean }).ok) {
          stalledAttempts++;
          throw new TerminalError('InvalidSpec', 'spec.ok: must be true in widget default/bad');
        }
        return observe(key);
      },
    });
    const stalled = () => store.get({ kind: 'Widget', namespace: 'default', name: 'bad' })?.status;
    await until('Stalled written', () => getCondition(stalled(), 'Stalled')?.status === 'True');
    expect(getCondition(stalled(), 'Stalled')).toMatchObject({
      reason: 'InvalidSpec',
      message: 'spec.ok: must be true in widget default/bad',
      observedGeneration: 1,
    });
    expect(getCondition(stalled(), 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    // Let plenty of backoff periods pass (measured by another key's requeues): no retry happened.
    store.create(widget('clock'));
    await until('10 ticks', () => ticks >= 10);
    // The status write of the Stalled condition itself triggers one more reconcile (a MODIFIED event).
    expect(stalledAttempts).toBeLessThanOrEqual(2);
    const bad = store.get({ kind: 'Widget', namespace: 'default', name: 'bad' })!;
    store.update({ ...bad, spec: { ok: true } });
    await until('fixed spec observed', () => observed('bad') === 2);
  });

  it('never runs two reconciles of one key at once', async () => {
    let running = 0;
    let maxConcurrent = 0;
    let done = 0;
    store.create(widget('hot'));
    run({
      workers: 4,
      reconcile: async () => {
        running++;
        maxConcurrent = Math.max(maxConcurrent, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        done++;
        return undefined;
      },
    });
    const c = controllers[0];
    // Keep re-adding the key while reconciles of it are in flight.
    const deadline = Date.now() + 10_000;
    while (done < 5 && Date.now() < deadline) {
      c.enqueue('default/hot');
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(done).toBeGreaterThanOrEqual(5);
    expect(maxConcurrent).toBe(1);
  });

  it('maps changes of a related kind to keys of its own kind', async () => {
    store.create(widget('w1', { host: 'g' }));
    store.create(widget('w2', { host: 'other' }));
    const reconciled: string[] = [];
    run({
      reconcile: (key) => {
        reconciled.push(key);
        return undefined;
      },
      watches: [
        {
          kind: 'Host',
          map: (h) =>
            store
              .list('Widget')
              .items.filter((w) => (w.spec as { host?: string }).host === h.metadata.name)
              .map((w) => `${w.metadata.namespace}/${w.metadata.name}`),
        },
      ],
    });
    await until('initial reconciles', () => reconciled.length >= 2);
    reconciled.length = 0;
    store.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'Host',
      metadata: { name: 'g' },
    });
    await until('w1 reconciled for its host', () => reconciled.includes('default/w1'));
    expect(reconciled).not.toContain('default/w2');
  });

  it('filter keeps objects of the kind out of the queue', async () => {
    const reconciled: string[] = [];
    store.create(widget('mine', { host: 'a' }));
    store.create(widget('theirs', { host: 'b' }));
    run({
      filter: (o) => (o.spec as { host?: string }).host === 'a',
      reconcile: (key) => {
        reconciled.push(key);
        return { requeueAfterMs: 10 };
      },
    });
    await until('requeued a few times', () => reconciled.length >= 3);
    expect(new Set(reconciled)).toEqual(new Set(['default/mine']));
  });

  it('ignoreStatusOnlyChanges: a status write does not wake it, a metadata or spec change does', async () => {
    const reconciled: number[] = [];
    store.create(widget('quiet'));
    run({
      ignoreStatusOnlyChanges: true,
      reconcile: (key) => {
        reconciled.push(store.get(objectKey('Widget', key))!.metadata.generation!);
        return undefined;
      },
    });
    await until('first reconcile', () => reconciled.length === 1);
    await updateStatus(store, objectKey('Widget', 'default/quiet'), (s) => {
      s.phase = 'Whatever';
    });
    const w = store.get({ kind: 'Widget', namespace: 'default', name: 'quiet' })!;
    store.update({ ...w, metadata: { ...w.metadata, labels: { a: 'b' } } });
    // Events arrive in order and the queue is FIFO: had the status write woken it, that came first.
    await until('label change reconciled', () => reconciled.length >= 2);
    expect(reconciled).toHaveLength(2);
  });

  it('stop() aborts in-flight reconciles and waits for them', async () => {
    let signal: AbortSignal | undefined;
    let finished = false;
    store.create(widget('slow'));
    const c = run({
      reconcile: async (_key, opts) => {
        signal = opts.signal;
        await new Promise((_, reject) =>
          opts.signal.addEventListener('abort', () => reject(opts.signal.reason)),
        );
        finished = true;
        return undefined;
      },
    });
    await until('reconcile in flight', () => signal !== undefined);
    await c.stop();
    expect(signal!.aborted).toBe(true);
    expect(c.isStarted).toBe(false);
    expect(finished).toBe(false);
  });
});
