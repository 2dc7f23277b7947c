// Named errors of the local-cluster launcher (`npm start`): each says what went wrong and what to do.

export class LocalClusterError extends Error {
  static readonly code = 'ERR_LOCAL_CLUSTER';
  readonly code = LocalClusterError.code;
  constructor(message: string) {
    super(message);
    this.name = 'LocalClusterError';
  }
}
