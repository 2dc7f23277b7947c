// Everything a host in a p2p overlay (`--p2p`) needs beyond a single host — libp2p and the DHT, SWIM
// membership, replication, DHT status and discovery, the host key — gathered in one module that
// cluster-service.ts and daemon.ts load with `import()` only when `--p2p` is given: a single host never
// loads libp2p (about 35 MB of resident memory for its code and heap).

export { peerIdFromPrivateKey } from '@libp2p/peer-id';
export { StatusPublisher } from '../cluster/status-publisher.ts';
export { clusterRowAuthority } from '../cluster/write-policy.ts';
export { Discovery } from '../p2p/discovery.ts';
export { Membership } from '../p2p/membership/membership.ts';
export { openXenosNode } from '../p2p/node.ts';
export { loadOrCreatePeerKey, PEER_KEY_FILE } from '../p2p/peer-key.ts';
export { peerSigner } from '../p2p/peer-signature.ts';
export { clusterProtector, handshakeRefusalCounter } from '../p2p/pnet/protector.ts';
export { RecordPublisher } from '../p2p/record-publisher.ts';
export { Libp2pTransport } from '../store/replication/libp2p-transport.ts';
export { Replicator } from '../store/replication/replicator.ts';
