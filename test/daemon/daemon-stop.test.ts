// Daemon.stop stops every part even when one of them fails to stop: the parts before and after it, the
// API server and the store still stop and the data dir's lock is released; the error names the part.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.ts';
import { DataDirLock } from '../../src/daemon/data-dir-lock.ts';
import { DaemonStopError } from '../../src/daemon/errors.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('stops every part, closes the store and releases the lock when a part throws, then names it', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'xenos-daemon-stop-'));
  dirs.push(dataDir);
  const daemon = new Daemon({ dataDir, hostName: 'h1', apiHost: '127.0.0.1', apiPort: 0 });
  const stopped: string[] = [];
  daemon.use({ start: () => {}, stop: () => void stopped.push('first') }, 'first');
  daemon.use(
    {
      start: () => {},
      stop: () => {
        stopped.push('broken');
        throw new Error('the driver would not let go');
      },
    },
    'broken',
  );
  daemon.use({ start: () => {}, stop: async () => void stopped.push('last') }, 'last');
  await daemon.start();
  const url = daemon.apiUrl;
  const store = daemon.store;

  const err = await daemon.stop().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DaemonStopError);
  expect((err as DaemonStopError).failures.map((f) => f.part)).toEqual(['broken']);
  expect((err as Error).message).toContain('broken: the driver would not let go');
  // Reverse order of use(), and the parts around the broken one stopped too.
  expect(stopped).toEqual(['last', 'broken', 'first']);
  // The API no longer answers, the store is closed, and another xenosd can take the data dir.
  await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  expect(() => store.list('Host')).toThrow();
  DataDirLock.acquire(dataDir).release();
  // A second stop does nothing.
  await expect(daemon.stop()).resolves.toBeUndefined();
});
