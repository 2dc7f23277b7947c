// The host's metrics without a daemon: the exposition parses (and the test parser refuses what is not
// the format), the controller runner reports each reconcile's result and its queue, and the store's
// figures count this host's instances by phase and each migration it was the source of once, with its
// pause. The scrape of real xenosd processes is test/daemon/metrics.test.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeFigures } from '../../src/daemon/host-figures.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { HostMetrics } from '../../src/metrics/host-metrics.ts';
import { SERVICE_INSTANCE, SERVICE_MIGRATION } from '../../src/model/kinds.ts';
import type { XObject } from '../../src/model/object.ts';
import { Controller } from '../../src/reconcile/controller.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import { openStore, type SqliteStore } from '../../src/store/sqlite-store.ts';
import { until } from '../wait.ts';
import { parseMetrics, total } from './prometheus.ts';

let dir: string;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenos-metrics-'));
  store = openStore({ path: join(dir, 'store.db'), namespaced: (k) => k !== 'Host', writer: 'host-a' });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(m: HostMetrics) {
  return parseMetrics((await m.exposition()).body);
}

function obj(kind: string, name: string, spec: Record<string, unknown> = {}): XObject {
  return { apiVersion: 'xenos.io/v1alpha1', kind, metadata: { name, namespace: 'default' }, spec };
}

describe('the Prometheus exposition', () => {
  it('parses, with the process figures every Node exporter has', async () => {
    const families = await scrape(new HostMetrics());
    expect(total(families, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(families.get('xenos_api_requests_total')?.type).toBe('counter');
  });

  it('the test parser refuses what is not the format', () => {
    expect(() => parseMetrics('x 1\n')).toThrow(/no declared family/);
    expect(() => parseMetrics('# HELP x h\n# TYPE x counter\nx 1\n')).toThrow(/lacks _total/);
    expect(() => parseMetrics('# HELP x_total h\n# TYPE x_total counter\nx_total{a="1} 1\n')).toThrow(
      /bad labels/,
    );
    expect(() =>
      parseMetrics(
        '# HELP h_seconds h\n# TYPE h_seconds histogram\nh_seconds_bucket{le="1"} 2\nh_seconds_bucket{le="+Inf"} 1\nh_seconds_count 1\n',
      ),
    ).toThrow(/not cumulative/);
  });
});

describe('the controller runner', () => {
  it('reports each reconcile by result, its latency and its queue', async () => {
    const metrics = new HostMetrics({ defaultMetrics: false });
    let calls = 0;
    const c = new Controller(
      { store, log: silentLogger.root, metrics },
      {
        kind: 'Widget',
        name: 'widgets',
        rateLimiter: { when: () => 1, forget: () => {}, retries: () => 0 },
        reconcile: (key) => {
          calls++;
          if (key === 'default/stuck') throw new TerminalError('Broken', 'never works');
          if (key === 'default/flaky' && calls < 3) throw new Error('not yet');
          return undefined;
        },
        onTerminal: () => {},
      },
    );
    store.create(obj('Widget', 'flaky'));
    store.create(obj('Widget', 'stuck'));
    c.start();
    try {
      const families = await until('the flaky widget reconciled', async () => {
        const f = await scrape(metrics);
        const done = total(f, 'xenos_controller_reconciles_total', {
          controller: 'widgets',
          result: 'success',
        });
        return done >= 1 ? f : undefined;
      });
      const by = (result: string) =>
        total(families, 'xenos_controller_reconciles_total', { controller: 'widgets', result });
      expect(by('terminal')).toBe(1);
      expect(by('error')).toBeGreaterThanOrEqual(1);
      expect(total(families, 'xenos_controller_reconcile_errors_total', { controller: 'widgets' })).toBe(
        by('terminal') + by('error'),
      );
      expect(total(families, 'xenos_controller_reconcile_duration_seconds', { controller: 'widgets' })).toBe(
        by('success') + by('error') + by('terminal'),
      );
      expect(total(families, 'xenos_workqueue_depth', { controller: 'widgets' })).toBe(0);
      expect(families.get('xenos_workqueue_depth')?.samples).toHaveLength(1);
    } finally {
      await c.stop();
    }
    // A stopped controller's queue is no longer reported.
    expect((await scrape(metrics)).get('xenos_workqueue_depth')?.samples).toHaveLength(0);
  });
});

describe("the store's figures", () => {
  it("counts this host's instances by phase, every phase present", async () => {
    const metrics = new HostMetrics({ defaultMetrics: false });
    const stop = storeFigures(metrics, store, 'host-a');
    try {
      for (const [name, host, phase] of [
        ['one', 'host-a', 'Running'],
        ['two', 'host-a', 'Running'],
        ['three', 'host-a', 'Failed'],
        ['elsewhere', 'host-b', 'Running'],
      ]) {
        const i = store.create(obj(SERVICE_INSTANCE.kind, name, { host, templateRef: { name: 't' } }));
        store.update({ ...i, status: { phase } }, { subresource: 'status' });
      }
      const families = await scrape(metrics);
      const phases = families.get('xenos_service_instances')?.samples.map((s) => s.labels.phase);
      expect(phases).toEqual(expect.arrayContaining(['Pending', 'Pulling', 'Running', 'Failed', 'Unknown']));
      expect(total(families, 'xenos_service_instances', { phase: 'Running' })).toBe(2);
      expect(total(families, 'xenos_service_instances', { phase: 'Failed' })).toBe(1);
      expect(total(families, 'xenos_service_instances', { phase: 'Pending' })).toBe(0);
    } finally {
      stop();
    }
  });

  it('counts each migration this host was the source of once, as it ends, with its pause', async () => {
    // One that ended before the host started is history, not counted.
    const old = store.create(obj(SERVICE_MIGRATION.kind, 'old', { instanceRef: { name: 'x' } }));
    store.update(
      { ...old, status: { phase: 'Succeeded', sourceHost: 'host-a', mode: 'Live', downtimeMs: 5 } },
      { subresource: 'status' },
    );
    const metrics = new HostMetrics({ defaultMetrics: false });
    const stop = storeFigures(metrics, store, 'host-a');
    try {
      const end = (name: string, status: Record<string, unknown>) => {
        const m = store.create(obj(SERVICE_MIGRATION.kind, name, { instanceRef: { name: 'x' } }));
        const running = store.update(
          { ...m, status: { phase: 'Running', sourceHost: status.sourceHost } },
          { subresource: 'status' },
        );
        const done = store.update({ ...running, status }, { subresource: 'status' });
        // A later write of the ended migration is not another ending.
        store.update(
          { ...done, metadata: { ...done.metadata, labels: { seen: 'again' } } },
          { subresource: undefined },
        );
      };
      end('live', { phase: 'Succeeded', sourceHost: 'host-a', mode: 'Live', downtimeMs: 250 });
      end('cold', { phase: 'Failed', sourceHost: 'host-a', mode: 'Cold' });
      end('theirs', { phase: 'Succeeded', sourceHost: 'host-b', mode: 'Live', downtimeMs: 90 });
      const families = await scrape(metrics);
      expect(total(families, 'xenos_migrations_total')).toBe(2);
      expect(total(families, 'xenos_migrations_total', { mode: 'Live', result: 'Succeeded' })).toBe(1);
      expect(total(families, 'xenos_migrations_total', { mode: 'Cold', result: 'Failed' })).toBe(1);
      expect(total(families, 'xenos_migration_pause_seconds', { mode: 'Live' })).toBe(1);
      const sum = families.get('xenos_migration_pause_seconds')?.samples.find((s) => s.name.endsWith('_sum'));
      expect(sum?.value).toBeCloseTo(0.25);
    } finally {
      stop();
    }
  });
});
