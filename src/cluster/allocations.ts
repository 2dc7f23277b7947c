// What each host has bound to it, kept incrementally from the instances informer: per host, the bound
// instances grouped by the shape they ask for (their own spec.resources, else their template's), so
// a placement decision sums a handful of groups instead of walking every instance in the cluster. A
// template's shape is read when the sum is taken, so a template that changes needs no re-indexing.

import type { ServiceInstance } from '../model/service-instance.ts';
import type { ServiceTemplate } from '../model/service-template.ts';
import { cacheKey, type InformerChange } from '../store/informer.ts';
import { type Offer, requestOf } from './resources.ts';

/** Instances of one shape on one host: how many, and one of them to compute the shape's request from. */
interface ShapeGroup {
  count: number;
  sample: ServiceInstance;
}

interface Bound {
  host: string;
  shape: string;
}

/** The shape an instance asks for: its own overrides and the template it falls back to. */
function shapeOf(i: ServiceInstance): string {
  const r = i.spec?.resources;
  return JSON.stringify([
    r?.memory ?? null,
    r?.vcpus ?? null,
    i.metadata.namespace ?? 'default',
    i.spec?.templateRef?.name ?? '',
  ]);
}

export class HostAllocations {
  readonly #byHost = new Map<string, Map<string, ShapeGroup>>();
  /** Where each bound instance is counted (cache key → host and shape). */
  readonly #bound = new Map<string, Bound>();

  /** Feeds one informer change of a ServiceInstance. */
  apply(change: InformerChange<ServiceInstance>): void {
    const key = cacheKey(change.object);
    this.#remove(key);
    const host = change.object.spec?.host;
    if (change.type !== 'DELETED' && host) this.#add(key, host, change.object);
  }

  /** The sum of what the instances bound to `host` ask for (with their count), leaving out `except`
   *  (the cache key of the instance being placed, should it already be counted there). */
  allocated(
    host: string,
    templateOf: (i: ServiceInstance) => ServiceTemplate | undefined,
    except?: string,
  ): Offer {
    const total: Offer = { memory: 0, cpuMillis: 0, instances: 0 };
    const groups = this.#byHost.get(host);
    if (!groups) return total;
    const skip = except !== undefined ? this.#bound.get(except) : undefined;
    for (const [shape, g] of groups) {
      const count = g.count - (skip?.host === host && skip.shape === shape ? 1 : 0);
      if (count === 0) continue;
      const r = requestOf(g.sample, templateOf(g.sample));
      total.memory += r.memory * count;
      total.cpuMillis += r.cpuMillis * count;
      total.instances += count;
    }
    return total;
  }

  /** How many instances are bound to `host` (for tests and status). */
  count(host: string): number {
    let n = 0;
    for (const g of this.#byHost.get(host)?.values() ?? []) n += g.count;
    return n;
  }

  #add(key: string, host: string, instance: ServiceInstance): void {
    const shape = shapeOf(instance);
    let groups = this.#byHost.get(host);
    if (!groups) {
      groups = new Map();
      this.#byHost.set(host, groups);
    }
    const g = groups.get(shape);
    if (g) g.count++;
    else groups.set(shape, { count: 1, sample: instance });
    this.#bound.set(key, { host, shape });
  }

  #remove(key: string): void {
    const was = this.#bound.get(key);
    if (!was) return;
    this.#bound.delete(key);
    const groups = this.#byHost.get(was.host);
    const g = groups?.get(was.shape);
    if (!groups || !g) return;
    if (--g.count === 0) groups.delete(was.shape);
    if (groups.size === 0) this.#byHost.delete(was.host);
  }
}
