// GET /metrics: this host's metrics in the Prometheus text format (src/metrics/host-metrics.ts), for the
// admin: a scrape needs the admin token, like every other call. What is in it is listed in
// docs/metrics.md.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize } from '../api/auth.ts';
import type { ApiRoute } from '../api/server.ts';
import { errors } from '../api/status-errors.ts';
import type { HostMetrics } from '../metrics/host-metrics.ts';

export function metricsRoute(metrics: HostMetrics): ApiRoute {
  return async (req: IncomingMessage, res: ServerResponse, { path, principal }) => {
    if (path !== '/metrics') return false;
    req.resume();
    if ((req.method ?? 'GET') !== 'GET') throw errors.methodNotAllowed(req.method ?? '', ['GET']);
    if (!authorize(principal, 'get', { group: '', resource: 'metrics' }))
      throw errors.forbidden(`User "${principal.name}" cannot get /metrics (it needs the admin token)`);
    const { contentType, body } = await metrics.exposition();
    res.writeHead(200, { 'Content-Type': contentType });
    res.end(body);
    return true;
  };
}
