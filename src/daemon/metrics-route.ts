// GET /metrics: this host's counters in the Prometheus text format, for the admin (a scrape needs the
// admin token, like every other call). Today: state replication's (src/store/replication/metrics.ts);
// empty on a host without the p2p overlay.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize } from '../api/auth.ts';
import type { ApiRoute } from '../api/server.ts';
import { errors } from '../api/status-errors.ts';
import { replicationMetrics } from '../store/replication/metrics.ts';
import type { Replicator } from '../store/replication/replicator.ts';

export function metricsRoute(replicator: () => Replicator | undefined): ApiRoute {
  return (req: IncomingMessage, res: ServerResponse, { path, principal }) => {
    if (path !== '/metrics') return false;
    req.resume();
    if ((req.method ?? 'GET') !== 'GET') throw errors.methodNotAllowed(req.method ?? '', ['GET']);
    if (!authorize(principal, 'get', { group: '', resource: 'metrics' }))
      throw errors.forbidden(`User "${principal.name}" cannot get /metrics (it needs the admin token)`);
    const r = replicator();
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(r ? replicationMetrics(r) : '');
    return true;
  };
}
