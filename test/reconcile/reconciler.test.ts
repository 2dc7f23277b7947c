// The Reconciler skeleton against the real SQLite store: status written once per pass however many steps
// queue changes, and not at all when nothing changed; a transient error lands in Synced=False with a
// reason and is retried with the runner's backoff (on fake time) until it clears; a terminal error is
// Stalled, recorded as an Event and not retried; the finalizer is added first and dropped only once
// finalize has released everything, with the pending pass's status written meanwhile.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log/logger.ts';
import type { XObject } from '../../src/model/object.ts';
import { getCondition, setCondition, summariseReady } from '../../src/reconcile/conditions.ts';
import { Controller } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import { Reconciler, type ReconcilerInit, SYNCED } from '../../src/reconcile/reconciler.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { type CountedStore, countStatusWrites } from '../status-writes.ts';

const quiet = silentLogger.root;
const KEY = 'default/w';
const FINALIZER = 'test.xenos.io/held';

let dir: string;
let store: SqliteStore;
let counted: CountedStore;
let counting: Store;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenos-reconciler-'));
  store = openStore({ path: join(dir, 'store.db'), namespaced: (k) => k !== 'Host', writer: 'host-a' });
  counted = countStatusWrites(store);
  counting = counted.store;
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function widget(): XObject {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'Widget',
    metadata: { name: 'w', namespace: 'default' },
    spec: {},
  };
}

function stored(): XObject | undefined {
  return store.get({ kind: 'Widget', namespace: 'default', name: 'w' });
}

/** Three steps, each queueing a condition of its own; Ready summarised from them. */
function threeSteps(extra: Partial<ReconcilerInit<'Widget'>> = {}): ReconcilerInit<'Widget'> {
  const cond = (type: string) => ({
    name: type.toLowerCase(),
    run: ({ status, generation }: Parameters<ReconcilerInit<'Widget'>['steps'][0]['run']>[0]) => {
      status((s) => {
        setCondition(s, { type, status: 'True', reason: 'Done', message: `${type} done` }, generation);
      });
      return undefined;
    },
  });
  return {
    kind: 'Widget',
    steps: [cond('A'), cond('B'), cond('C')],
    summarise: (s, generation) => summariseReady(s, generation, { dependsOn: ['A', 'B', 'C'] }),
    ...extra,
  };
}

const signal = new AbortController().signal;

describe('Reconciler', () => {
  it('writes status once per pass, whatever the steps queue, and not at all when nothing changed', async () => {
    store.create(widget());
    const r = new Reconciler({ store: counting, log: quiet }, threeSteps());
    await r.reconcile(KEY, { signal });
    expect(counted.total()).toBe(1);
    const s = stored()!.status!;
    for (const type of ['A', 'B', 'C', 'Ready', SYNCED])
      expect(getCondition(s, type)?.status, type).toBe('True');
    expect(s.observedGeneration).toBe(1);

    const rv = stored()!.metadata.resourceVersion;
    await r.reconcile(KEY, { signal });
    await r.reconcile(KEY, { signal });
    expect(counted.total()).toBe(1);
    expect(stored()!.metadata.resourceVersion).toBe(rv);
  });

  it('a transient error becomes Synced=False with a reason, is retried with backoff, and clears', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const runner: { c?: Controller } = {};
    try {
      store.create(widget());
      const attempts: number[] = [];
      const seen: { reason?: string; message?: string; ready?: string }[] = [];
      const flaky = {
        name: 'fetch',
        run: () => {
          attempts.push(Date.now());
          if (attempts.length <= 3) {
            throw Object.assign(new Error('connection refused by the backend'), {
              code: 'BackendUnreachable',
            });
          }
          return undefined;
        },
      };
      const init = threeSteps();
      const r = new Reconciler(
        { store: counting, log: quiet },
        { ...init, steps: [init.steps[0], flaky, ...init.steps.slice(1)] },
      );
      runner.c = new Controller(
        { store, log: quiet },
        {
          kind: 'Widget',
          ignoreStatusOnlyChanges: true,
          reconcile: async (key, opts) => {
            const before = counted.total();
            const result = await r.reconcile(key, opts);
            expect(counted.total() - before).toBeLessThanOrEqual(1);
            const s = stored()!.status;
            const synced = getCondition(s, SYNCED);
            seen.push({
              reason: synced?.reason,
              message: synced?.message,
              ready: getCondition(s, 'Ready')?.reason,
            });
            return result;
          },
        },
      );
      runner.c.start();
      // Status writes are group commits, flushed on a (real) setImmediate: let each one land before the
      // fake clock moves on, so the backoff is measured from the pass that failed.
      for (let ms = 0; ms < 1000 && attempts.length < 4; ms++) {
        await new Promise((resolve) => setImmediate(resolve));
        await vi.advanceTimersByTimeAsync(1);
      }
      expect(attempts).toHaveLength(4);
      // The last pass's write lands on the next flush.
      await vi.waitFor(() => expect(getCondition(stored()?.status, SYNCED)?.status).toBe('True'));
      // The first failure is in the status with the error's reason and the step that failed; Ready says why.
      expect(seen[0]).toEqual({
        reason: 'BackendUnreachable',
        message: 'fetch: connection refused by the backend (retrying with backoff)',
        ready: 'BackendUnreachable',
      });
      // Retried with the runner's per-key backoff: 5, 10, 20 ms.
      expect(attempts.slice(1).map((t, i) => t - attempts[i])).toEqual([5, 10, 20]);
      const s = stored()!.status!;
      expect(getCondition(s, SYNCED)).toMatchObject({ status: 'True', reason: 'ReconcileSuccess' });
      expect(getCondition(s, 'Ready')?.status).toBe('True');
      expect(runner.c.retries(KEY)).toBe(0);
      // One write per failed pass (the same failure again changes nothing) and one for the success.
      expect(counted.total()).toBe(2);
    } finally {
      await runner.c?.stop();
      vi.useRealTimers();
    }
  });

  it('a terminal error is Stalled with its reason, recorded as an Event, and not retried', async () => {
    store.create(widget());
    const events: string[] = [];
    const init = threeSteps({ event: (_o, type, reason) => events.push(`${type} ${reason}`) });
    const bad = {
      name: 'validate',
      run: () => {
        throw new TerminalError('InvalidWidget', 'spec.size: must be positive');
      },
    };
    const r = new Reconciler({ store: counting, log: quiet }, { ...init, steps: [bad, ...init.steps] });
    const result = await r.reconcile(KEY, { signal });
    expect(result?.error).toBeInstanceOf(TerminalError);
    expect(counted.total()).toBe(1);
    const s = stored()!.status!;
    expect(getCondition(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidWidget' });
    expect(getCondition(s, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidWidget' });
    expect(getCondition(s, SYNCED)).toMatchObject({
      status: 'False',
      reason: 'InvalidWidget',
      message: 'validate: spec.size: must be positive',
    });
    expect(events).toEqual(['Warning InvalidWidget']);
  });

  it('adds the finalizer first; on deletion writes the pending pass, then drops the finalizer once released', async () => {
    store.create(widget());
    let released = false;
    const r = new Reconciler(
      { store: counting, log: quiet },
      threeSteps({
        finalizer: FINALIZER,
        finalize: ({ status, generation }) => {
          if (released) return true;
          status((s) => {
            setCondition(
              s,
              { type: 'A', status: 'False', reason: 'Releasing', message: 'letting go' },
              generation,
            );
          });
          return false;
        },
      }),
    );
    await r.reconcile(KEY, { signal });
    expect(stored()!.metadata.finalizers).toEqual([FINALIZER]);
    store.delete({ kind: 'Widget', namespace: 'default', name: 'w' });
    expect(stored()!.metadata.deletionTimestamp).toBeDefined();

    const writes = counted.total();
    await r.reconcile(KEY, { signal });
    expect(counted.total()).toBe(writes + 1);
    expect(getCondition(stored()!.status, 'A')).toMatchObject({ status: 'False', reason: 'Releasing' });
    expect(getCondition(stored()!.status, 'Ready')).toMatchObject({ status: 'False', reason: 'Releasing' });

    released = true;
    await r.reconcile(KEY, { signal });
    expect(stored()).toBeUndefined();
    expect(counted.total()).toBe(writes + 1);
  });
});
