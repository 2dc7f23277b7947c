// The ServiceTemplate controller with the real store and the real image cache: a template is Ready when
// its image is imported and digest-checked; a wrong digest stalls it with both digests; a missing
// source is retried until it appears; a relative path is refused with what to do. An image named by digest
// alone is Ready when this host holds it, or when a live host lists it in Host.status.images (no pull
// unless the host should hold it ahead of need), and otherwise says that no host holds it.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ServiceTemplateController } from '../../../controllers/servicetemplate/controller.ts';
import { cachedImage } from '../../../src/images/import-image.ts';
import { silentLogger } from '../../../src/log/logger.ts';
import type { CoreEvent } from '../../../src/model/event.ts';
import type { XObject } from '../../../src/model/object.ts';
import type { ServiceTemplateStatus } from '../../../src/model/service-template.ts';
import { getCondition } from '../../../src/reconcile/conditions.ts';
import { openStore, type SqliteStore } from '../../../src/store/sqlite-store.ts';
import { until } from '../../wait.ts';

const quiet = silentLogger.root;
let dir: string;
let store: SqliteStore;
let controller: ServiceTemplateController;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xenos-st-'));
  store = openStore({ path: join(dir, 'state.db'), namespaced: (k) => k !== 'Host', writer: 'host-a' });
  controller = new ServiceTemplateController(
    { store, log: quiet },
    { hostName: 'host-a', cacheDir: join(dir, 'images') },
  );
  controller.start();
});
afterEach(async () => {
  await controller.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function apply(name: string, image: Record<string, unknown>): XObject {
  return store.create({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name, namespace: 'default' },
    spec: { image, process: { command: ['true'] } },
  });
}

function statusOf(name: string): ServiceTemplateStatus {
  return (store.get({ kind: 'ServiceTemplate', namespace: 'default', name })?.status ??
    {}) as ServiceTemplateStatus;
}

/** Waits for `cond`; a time-out shows the template's status. */
const untilTemplate = (what: string, cond: () => boolean) =>
  until(() => `${what}: ${JSON.stringify(statusOf('t'))}`, cond, 15_000);

function imageDir(): string {
  const p = join(dir, 'src-image');
  mkdirSync(p, { recursive: true });
  writeFileSync(join(p, 'server.mjs'), 'console.log("hi")\n');
  return p;
}

describe('ServiceTemplate controller', () => {
  it('imports the image and becomes Ready with its digest and size', async () => {
    apply('t', { path: imageDir() });
    await untilTemplate('Ready', () => getCondition(statusOf('t'), 'Ready')?.status === 'True');
    const s = statusOf('t');
    expect(s.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(s.size).toBe('console.log("hi")\n'.length);
    expect(s.phase).toBe('Ready');
    expect(s.observedGeneration).toBe(1);
    expect(getCondition(s, 'ImageReady')).toMatchObject({ status: 'True', reason: 'Imported' });
    expect(await cachedImage(join(dir, 'images'), s.digest!)).toBeDefined();
    const events = store.list('Event', { namespace: 'default' }).items as CoreEvent[];
    expect(events.map((e) => e.reason)).toContain('Pulled');
  });

  it('a digest that does not match stalls the template, naming both digests; fixing it makes it Ready', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    apply('t', { path: imageDir(), digest: wrong });
    await untilTemplate('Stalled', () => getCondition(statusOf('t'), 'Stalled')?.status === 'True');
    const stalled = getCondition(statusOf('t'), 'Stalled')!;
    expect(stalled.reason).toBe('DigestMismatch');
    expect(stalled.message).toContain(wrong);
    const actual = /but the image at .* has digest (sha256:[0-9a-f]{64})/.exec(stalled.message)![1];
    expect(actual).not.toBe(wrong);
    expect(getCondition(statusOf('t'), 'Ready')).toMatchObject({ status: 'False', reason: 'DigestMismatch' });
    expect(statusOf('t').digest).toBeUndefined();

    const t = store.get({ kind: 'ServiceTemplate', namespace: 'default', name: 't' })!;
    store.update({ ...t, spec: { ...t.spec, image: { path: imageDir(), digest: actual } } });
    await untilTemplate('Ready', () => getCondition(statusOf('t'), 'Ready')?.status === 'True');
    expect(statusOf('t').digest).toBe(actual);
    expect(getCondition(statusOf('t'), 'Stalled')).toBeUndefined();
  });

  it('a missing source is reported and retried until it appears', async () => {
    const later = join(dir, 'later');
    apply('t', { path: later });
    await untilTemplate(
      'ImportFailed',
      () => getCondition(statusOf('t'), 'ImageReady')?.reason === 'ImportFailed',
    );
    expect(getCondition(statusOf('t'), 'ImageReady')!.message).toContain(later);
    expect(getCondition(statusOf('t'), 'Stalled')).toBeUndefined();
    mkdirSync(later);
    writeFileSync(join(later, 'x'), 'x');
    await untilTemplate('Ready', () => getCondition(statusOf('t'), 'Ready')?.status === 'True');
  });

  it('a relative path is refused with what to do', async () => {
    apply('t', { path: 'images/web' });
    await untilTemplate('Stalled', () => getCondition(statusOf('t'), 'Stalled')?.status === 'True');
    expect(getCondition(statusOf('t'), 'Stalled')).toMatchObject({ reason: 'RelativeImagePath' });
    expect(getCondition(statusOf('t'), 'Stalled')!.message).toContain('xenosctl apply -f');
  });

  it('an image named by digest alone is Ready once a live host holds it, and says no host does until then', async () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    apply('t', { digest });
    await untilTemplate('NoHolder', () => getCondition(statusOf('t'), 'ImageReady')?.reason === 'NoHolder');
    expect(statusOf('t').phase).toBe('Pending');
    expect(getCondition(statusOf('t'), 'ImageReady')!.message).toContain('xenosctl image push');
    store.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'Host',
      metadata: { name: 'host-b' },
      spec: {},
    });
    const h = store.get({ kind: 'Host', namespace: '', name: 'host-b' })!;
    store.update(
      {
        ...h,
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'HostRunning',
              message: '',
              lastTransitionTime: new Date().toISOString(),
            },
          ],
          images: [{ digest, manifest: `sha256:${'cd'.repeat(32)}`, size: 10 }],
        },
      },
      { subresource: 'status' },
    );
    // The template changes so the controller looks again at once (its resync would, later).
    const t = store.get({ kind: 'ServiceTemplate', namespace: 'default', name: 't' })!;
    store.update({ ...t, metadata: { ...t.metadata, labels: { touched: 'yes' } } });
    await untilTemplate('Ready', () => getCondition(statusOf('t'), 'Ready')?.status === 'True');
    expect(getCondition(statusOf('t'), 'ImageReady')).toMatchObject({ reason: 'Available' });
    expect(getCondition(statusOf('t'), 'ImageReady')!.message).toContain('host-b');
    expect(statusOf('t').digest).toBe(digest);
  });

  it('an image named by digest alone that this host holds is Ready with its size', async () => {
    apply('src', { path: imageDir() });
    await untilTemplate('Ready', () => getCondition(statusOf('src'), 'Ready')?.status === 'True');
    const { digest, size } = statusOf('src');
    apply('t', { digest });
    await untilTemplate('Ready', () => getCondition(statusOf('t'), 'Ready')?.status === 'True');
    expect(statusOf('t')).toMatchObject({ digest, size, phase: 'Ready' });
    expect(getCondition(statusOf('t'), 'ImageReady')!.message).toContain('is on host host-a');
  });
});
