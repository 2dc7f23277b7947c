// The QEMU driver's connections to its guests' monitors: one QMP connection per running guest (a QEMU
// monitor serves one client at a time, so live migration uses this one too), made on first use after the
// monitor directory is sealed (monitor-dir.ts), dropped when QEMU exits or the guest is stopped; and the
// guest's ACPI power button, the polite stop.

import type { Log } from '../../log/logger.ts';
import type { DomainRecord } from '../process/domain-record.ts';
import { readRecord } from '../process/domain-record.ts';
import { isAlive } from '../process/proc.ts';
import { waitUntil } from '../wait-until.ts';
import { QmpConnectionError } from './errors.ts';
import { sealMonitorDir } from './monitor-dir.ts';
import { QmpClient } from './qmp.ts';
import type { VmPaths } from './vm-layout.ts';

const DEFAULT_TIMEOUT_MS = 10_000;

export class GuestMonitors {
  private readonly log: Log;
  private readonly paths: (id: string) => VmPaths;
  private readonly clients = new Map<string, Promise<QmpClient>>();

  constructor(components: { log: Log }, init: { paths(id: string): VmPaths }) {
    this.log = components.log;
    this.paths = init.paths;
  }

  /** The QMP connection of the running guest `id`, made on first use and kept while QEMU runs. */
  connect(id: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<QmpClient> {
    let client = this.clients.get(id);
    if (client) return client;
    const paths = this.paths(id);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    client = (async () => {
      const rec = await readRecord(paths);
      const sealed = await waitUntil(() => sealMonitorDir(paths.qmpSocket, rec?.identity, id), {
        timeoutMs,
        signal: options.signal,
      });
      if (!sealed) {
        throw new QmpConnectionError(paths.qmpSocket, `QEMU made no monitor socket in ${timeoutMs} ms`, id);
      }
      return QmpClient.connect(paths.qmpSocket, { domainId: id, timeoutMs, signal: options.signal });
    })();
    this.clients.set(id, client);
    const drop = () => {
      if (this.clients.get(id) === client) this.clients.delete(id);
    };
    client.then((c) => c.closed.then(drop), drop);
    return client;
  }

  /** Closes the guest's connection (it stopped, or starts again). */
  forget(id: string): void {
    const client = this.clients.get(id);
    this.clients.delete(id);
    client?.then((c) => c.close()).catch(() => {});
  }

  /** Closes every connection; the guests keep running. */
  async closeAll(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    for (const c of clients) await c.then((qmp) => qmp.close()).catch(() => {});
  }

  /** Right after a start: seals the monitor directory as soon as QEMU has made its socket; a QEMU that
   *  ends first, or is slow, is sealed by the first connection instead. */
  async sealAfterStart(rec: DomainRecord, signal?: AbortSignal): Promise<void> {
    const run = rec.run;
    if (!rec.identity || !run) return;
    const socket = this.paths(rec.spec.id).qmpSocket;
    try {
      await waitUntil(
        async () =>
          (await sealMonitorDir(socket, rec.identity, rec.spec.id)) ||
          !(await isAlive(run.pid, run.startTime)),
        { timeoutMs: DEFAULT_TIMEOUT_MS, signal },
      );
    } catch (err) {
      if (signal?.aborted) throw err;
      this.log.warn(
        { err, domain: rec.spec.id },
        `domain ${rec.spec.id}: monitor not sealed yet: ${(err as Error).message}`,
      );
    }
  }

  /** The polite stop: the guest's ACPI power button. A QEMU whose monitor does not answer is forced after
   *  the grace period like any other. */
  async powerButton(id: string, graceMs: number, signal?: AbortSignal): Promise<void> {
    const timeoutMs = Math.min(graceMs, DEFAULT_TIMEOUT_MS);
    try {
      const qmp = await this.connect(id, { signal, timeoutMs });
      await qmp.execute('system_powerdown', undefined, { signal, timeoutMs });
    } catch (err) {
      if (signal?.aborted) throw err;
      this.log.warn(
        { err, domain: id },
        `domain ${id}: ACPI power button failed, it will be forced: ${(err as Error).message}`,
      );
    }
  }
}
