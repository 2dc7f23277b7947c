// Which host ports the process driver's domains hold: an index read from the domains' records once, then
// kept by each allocation and destroy (this driver is the records' one writer, so a start no longer reads
// every record), allocations one at a time (a port handed out is in the index before the next allocation
// looks), and a machine-wide lease per port (host-leases.ts) so another xenosd on the machine never hands
// out the same one.

import type { DomainSpec } from '../driver.ts';
import type { HostLeases } from '../host-leases.ts';
import { allocatePorts } from '../ports.ts';
import { DomainPaths, domainIdsIn, readRecord } from './domain-record.ts';

export class PortBook {
  private readonly leases: HostLeases;
  private readonly domainsDir: string;
  private queue: Promise<unknown> = Promise.resolve();
  private byDomain?: Promise<Map<string, number[]>>;

  constructor(components: { leases: HostLeases }, init: { domainsDir: string }) {
    this.leases = components.leases;
    this.domainsDir = init.domainsDir;
  }

  /** Host ports for the domain (its `previous` ones where still free), leased for `owner` (its directory). */
  allocate(
    spec: DomainSpec,
    previous: Record<string, number>,
    owner: string,
  ): Promise<Record<string, number>> {
    const next = this.queue.then(async () => {
      const index = await this.index();
      const reserved = new Set<number>();
      for (const [id, ports] of index) if (id !== spec.id) for (const p of ports) reserved.add(p);
      const allocated = await allocatePorts(spec.id, spec.ports ?? [], previous, reserved, (port, protocol) =>
        this.leases.tryTake(`port/${protocol}`, port, owner),
      );
      index.set(spec.id, Object.values(allocated));
      for (const protocol of ['TCP', 'UDP'] as const) {
        const keep = (spec.ports ?? []).filter((p) => p.protocol === protocol).map((p) => allocated[p.name]);
        this.leases.release(owner, `port/${protocol}`, keep);
      }
      return allocated;
    });
    this.queue = next.catch(() => {});
    return next;
  }

  /** The domain is gone: its ports are free for the others (its leases are released with its directory). */
  async forget(id: string): Promise<void> {
    (await this.index()).delete(id);
  }

  private index(): Promise<Map<string, number[]>> {
    this.byDomain ??= (async () => {
      const index = new Map<string, number[]>();
      for (const id of await domainIdsIn(this.domainsDir)) {
        const rec = await readRecord(new DomainPaths(this.domainsDir, id)).catch(() => undefined);
        if (rec?.ports) index.set(id, Object.values(rec.ports));
      }
      return index;
    })();
    return this.byDomain;
  }
}
