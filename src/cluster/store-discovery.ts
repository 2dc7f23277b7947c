// Discovery from the replicated store: every host holds every ServiceInstance with its status (service
// type, Ready condition, endpoints) and every Host, so a host answers "where does TYPE run?" from what it
// already has — no network round trip. An instance counts when it is Ready with endpoints, not being
// deleted, and bound to a host this host's membership holds live (alive or suspect) whose Host object is
// not NotReady: an instance on a dead host keeps Ready=True in the store (its host can no longer
// change it) and must not be handed out. What a host may write about an instance is bound to its
// writer by the store's signed rows (docs/trust-model.md), as the DHT's host records are by their signature.

import type { DiscoveredEndpoint } from '../model/discovery.ts';
import { HOST, SERVICE_INSTANCE } from '../model/kinds.ts';
import type { Store } from '../store/store.ts';
import { instanceRecordOf } from './instance-endpoints.ts';

export interface StoreDiscoveryComponents {
  store: Pick<Store, 'list' | 'get'>;
  /** Whether a host is live in this host's view (HostLiveness.isLive). */
  isLive: (host: string) => boolean;
}

/** The live endpoints of `serviceType` in `namespace`, from the objects this host holds. */
export function discoverFromStore(
  { store, isLive }: StoreDiscoveryComponents,
  namespace: string,
  serviceType: string,
): DiscoveredEndpoint[] {
  const items: DiscoveredEndpoint[] = [];
  for (const i of store.list(SERVICE_INSTANCE.kind, { namespace }).items) {
    const host = i.spec?.host;
    if (!host || i.metadata.deletionTimestamp) continue;
    const r = instanceRecordOf(i, host);
    if (r.serviceType !== serviceType || !r.ready || r.endpoints.length === 0) continue;
    if (!isLive(host)) continue;
    const h = store.get({ kind: HOST.kind, namespace: '', name: host });
    if (h?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False')) continue;
    const peerId = h?.status?.peerId;
    items.push({
      namespace: r.namespace,
      instance: r.name,
      host,
      ...(peerId ? { peerId } : {}),
      endpoints: r.endpoints,
    });
  }
  return items;
}
