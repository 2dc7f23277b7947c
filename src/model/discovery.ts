// What the discover API answers (`GET /apis/xenos.io/v1alpha1/namespaces/NS/discover/TYPE`): the live
// endpoints of a service type, read from the replicated store or found through the DHT (`source` says
// which). The server (src/cluster/discover-api.ts) builds it; xenosctl discover prints it. Also the rule
// for a service type's name.

const SERVICE_TYPE = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Throws TypeError unless `name` is a valid service type (lower-case, like a DNS name). */
export function checkServiceType(name: string): void {
  if (!SERVICE_TYPE.test(name)) {
    throw new TypeError(
      `service type ${JSON.stringify(name)}: use lower-case letters, digits, '-' and '.' (like a DNS name)`,
    );
  }
}

/** Where an answer came from: the objects this host holds (replicated to every host), or the DHT. */
export type DiscoverySource = 'store' | 'dht';

export interface DiscoveredEndpoint {
  namespace: string;
  instance: string;
  /** The host's name, and its peer id (the DHT record's signer; absent for a host without --p2p). */
  host?: string;
  peerId?: string;
  endpoints: string[];
}

export interface DiscoveryResult {
  apiVersion: string;
  kind: 'DiscoveryResult';
  serviceType: string;
  namespace: string;
  /** Which path answered. */
  source: DiscoverySource;
  items: DiscoveredEndpoint[];
}
