// Named errors of the cluster module (membership, placement): each says what
// was wrong, where, and what to do, so xenosd and the scripts can print it as one line.

export class ClusterConfigError extends Error {
  static readonly code = 'ERR_CLUSTER_CONFIG';
  readonly code = ClusterConfigError.code;
  constructor(message: string) {
    super(message);
    this.name = 'ClusterConfigError';
  }
}
