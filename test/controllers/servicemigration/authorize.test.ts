// The target's gate on /xenos/migrate/1.0.0, over a real store: a stream is accepted only for a Running
// ServiceMigration naming this host as its target, from the key of the host its instance is bound to —
// waiting, bounded, for a migration that has not replicated here yet — and refused with the code the
// source is told otherwise.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MigrationTarget } from '../../../controllers/servicemigration/target.ts';
import { MigrationRefusedError } from '../../../src/cluster/migration/errors.ts';
import { LocalMigrations } from '../../../src/cluster/migration/local-migrations.ts';
import { ProcessDriver } from '../../../src/drivers/process/process-driver.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { XObject } from '../../../src/model/object.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';

const peerOf = (name: string) => `12D3KooWTestPeer${name.padEnd(36, 'x')}`;

describe('the target accepting a migration', () => {
  let store: SqliteStore;
  let target: MigrationTarget;
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xenos-authorize-'));
    store = openStore({ path: ':memory:', namespaced: (k) => k !== 'Host', writer: 'b' });
    for (const name of ['a', 'b', 'c']) {
      const h = store.create({ apiVersion: 'xenos.io/v1alpha1', kind: 'Host', metadata: { name }, spec: {} });
      store.update({ ...h, status: { peerId: peerOf(name) } } as XObject, { subresource: 'status' });
    }
    store.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceInstance',
      metadata: { name: 'web-1', namespace: 'default' },
      spec: { templateRef: { name: 'web' }, host: 'a' },
    });
    target = new MigrationTarget(
      {
        store,
        driver: new ProcessDriver({}, { dataDir: dir }),
        migrations: new LocalMigrations({ store }, { hostName: 'b' }),
        log: silentLogger.root,
      },
      { hostName: 'b', acceptWaitMs: 300 },
    );
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function migration(name: string, status: Record<string, unknown>) {
    const m: XObject = store.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceMigration',
      metadata: { name, namespace: 'default' },
      spec: { instanceRef: { name: 'web-1' } },
    });
    store.update({ ...m, status } as XObject, { subresource: 'status' });
    return { namespace: 'default', name, uid: m.metadata.uid! };
  }

  const refusal = (ref: { namespace: string; name: string; uid: string }, peer: string) =>
    target.authorize(ref, peer, new AbortController().signal).then(
      () => 'accepted',
      (err: Error) => (err instanceof MigrationRefusedError ? err.code : err.message),
    );

  it('accepts the bound host for a Running migration to this host, and no other peer', async () => {
    const ref = migration('m', { phase: 'Running', sourceHost: 'a', targetHost: 'b' });
    expect(await refusal(ref, peerOf('a'))).toBe('accepted');
    expect(await refusal(ref, peerOf('c'))).toBe('WrongSource');
  });

  it('refuses a migration it does not hold, another uid, one not Running or aimed elsewhere', async () => {
    expect(await refusal({ namespace: 'default', name: 'ghost', uid: randomUUID() }, peerOf('a'))).toBe(
      'UnknownMigration',
    );
    const pending = migration('p', { phase: 'Pending', targetHost: 'b' });
    expect(await refusal(pending, peerOf('a'))).toBe('UnknownMigration');
    expect(await refusal({ ...pending, uid: randomUUID() }, peerOf('a'))).toBe('UnknownMigration');
    const elsewhere = migration('e', { phase: 'Running', sourceHost: 'a', targetHost: 'c' });
    expect(await refusal(elsewhere, peerOf('a'))).toBe('UnknownMigration');
  });

  it('waits for a migration that reaches its store a little after the stream', async () => {
    const m: XObject = store.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceMigration',
      metadata: { name: 'late', namespace: 'default' },
      spec: { instanceRef: { name: 'web-1' } },
    });
    const ref = { namespace: 'default', name: 'late', uid: m.metadata.uid! };
    const verdict = refusal(ref, peerOf('a'));
    setTimeout(() => {
      store.update({ ...m, status: { phase: 'Running', sourceHost: 'a', targetHost: 'b' } } as XObject, {
        subresource: 'status',
      });
    }, 100);
    expect(await verdict).toBe('accepted');
  });
});
