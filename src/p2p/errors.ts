// Named errors of the p2p module (node, cluster key, signed records, discovery). Each message says what was
// wrong, where (file, key, peer) and what to do, so the daemon can show it to a person without a stack trace.

export class ClusterKeyError extends Error {
  static readonly code = 'ERR_CLUSTER_KEY';
  readonly code = ClusterKeyError.code;
  constructor(file: string, reason: string) {
    super(
      `cluster key ${file}: ${reason}. Copy the cluster's swarm.key from a host of the cluster ` +
        '(format "/key/swarm/psk/1.0.0/", "/base16/", 64 hex digits), or delete the file to create a new cluster.',
    );
    this.name = 'ClusterKeyError';
  }
}

export class PeerKeyError extends Error {
  static readonly code = 'ERR_PEER_KEY';
  readonly code = PeerKeyError.code;
  constructor(file: string, reason: string) {
    super(
      `peer key ${file}: ${reason}. Restore the file from a backup, or delete it to give this host a new ` +
        'identity (other hosts will see a new peer).',
    );
    this.name = 'PeerKeyError';
  }
}

export class ListenAddressError extends Error {
  static readonly code = 'ERR_LISTEN_ADDRESS';
  readonly code = ListenAddressError.code;
  constructor(value: string) {
    super(
      `--p2p ${JSON.stringify(value)}: expected HOST:PORT (for example 127.0.0.1:4001, [::1]:0, 0.0.0.0:4001)`,
    );
    this.name = 'ListenAddressError';
  }
}

export class NotStartedError extends Error {
  static readonly code = 'ERR_NOT_STARTED';
  readonly code = NotStartedError.code;
  constructor(what: string) {
    super(`${what}: the p2p node is not started; call start() first`);
    this.name = 'NotStartedError';
  }
}

/** A record from the network (or about to be published) failed a check; `reason` is machine-readable. */
export class InvalidRecordError extends Error {
  static readonly code = 'ERR_INVALID_RECORD';
  readonly code = InvalidRecordError.code;
  readonly reason:
    | 'oversized'
    | 'malformed'
    | 'forged'
    | 'wrong-signer'
    | 'lifetime'
    | 'not-yet-valid'
    | 'expired'
    | 'stale'
    | 'key';
  readonly key: string;
  constructor(key: string, reason: InvalidRecordError['reason'], detail: string) {
    super(`record ${key}: ${reason}: ${detail}`);
    this.name = 'InvalidRecordError';
    this.reason = reason;
    this.key = key;
  }
}

export class RecordNotFoundError extends Error {
  static readonly code = 'ERR_RECORD_NOT_FOUND';
  readonly code = RecordNotFoundError.code;
  constructor(key: string, detail: string) {
    super(
      `record ${key}: not found in the DHT (${detail}); the publishing host may be down or not yet published`,
    );
    this.name = 'RecordNotFoundError';
  }
}

/** A connection refused at the cluster-key handshake: the peer has no key or another one, runs a Xenos that
 *  speaks an older cluster protocol, or was too slow. */
export class HandshakeRefusedError extends Error {
  static readonly code = 'ERR_HANDSHAKE_REFUSED';
  readonly code = HandshakeRefusedError.code;
  readonly reason: 'bad_key' | 'version' | 'timeout';
  constructor(remote: string, reason: 'bad_key' | 'version' | 'timeout', detail: string) {
    const hint = {
      bad_key: " (give it the cluster's swarm.key to join)",
      version: ' (run the same Xenos release on every host)',
      timeout: '',
    }[reason];
    super(`connection with ${remote} refused at the cluster-key handshake: ${detail}${hint}`);
    this.name = 'HandshakeRefusedError';
    this.reason = reason;
  }
}
