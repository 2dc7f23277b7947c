// Public API of the p2p module, for xenosd: the libp2p node, the cluster key, signed DHT records and
// service discovery. See src/p2p/README.md.

export {
  type DiscoveredHost,
  type DiscoverOptions,
  Discovery,
  type HostStatus,
  type InstanceEndpoints,
  STATUS_PROTOCOL,
  serviceCid,
} from './discovery.ts';
export * from './errors.ts';
export {
  ADDRS_FILE,
  DEFAULT_ALLOW,
  DHT_PROTOCOL,
  listenMultiaddr,
  type OpOptions,
  openXenosNode,
  type ProviderPeer,
  XenosNode,
  type XenosNodeComponents,
  type XenosNodeInit,
} from './node.ts';
export { loadOrCreatePeerKey, PEER_KEY_FILE } from './peer-key.ts';
export { type ClusterKey, createClusterKey, loadClusterKey, parseClusterKey } from './pnet/cluster-key.ts';
export { ClusterProtector, clusterProtector } from './pnet/protector.ts';
export type { ProtocolNode } from './protocol-node.ts';
export {
  hostRecordKey,
  instanceRecordKey,
  MAX_RECORD_BYTES,
  type RecordBody,
  type RecordKind,
  RecordPublisher,
  verifyRecord,
} from './records.ts';
