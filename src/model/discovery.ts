// What the discover API answers (`GET /apis/xenos.io/v1alpha1/namespaces/NS/discover/TYPE`): the live
// endpoints of a service type, found through the DHT. The server (src/cluster/discover-api.ts) builds it;
// xenosctl discover prints it.

export interface DiscoveredEndpoint {
  namespace: string;
  instance: string;
  /** The host's name as its record says, and its peer id (the record's signer). */
  host?: string;
  peerId: string;
  endpoints: string[];
}

export interface DiscoveryResult {
  apiVersion: string;
  kind: 'DiscoveryResult';
  serviceType: string;
  namespace: string;
  items: DiscoveredEndpoint[];
}
