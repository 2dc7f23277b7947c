// The API's discover endpoint: GET /apis/xenos.io/v1alpha1/namespaces/{ns}/discover/{serviceType}
// returns the live endpoints of a service type, found through the DHT from whichever host is asked
// (provider records for the type, then each provider's fresh signed host record), never from the
// replicated store: a host that runs none of them answers the same. `?timeoutSeconds=N` bounds the
// whole answer (default 5; past it, 504). Needs `list` on serviceinstances in the namespace.
// It asks at once (the peers nearest the key, see Discovery.discover) and only when that finds nothing waits
// until this host's DHT routing table knows a peer and asks every peer near the key: no join wait up front.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { authorize } from '../api/auth.ts';
import { sendJson } from '../api/http-io.ts';
import type { ApiRoute } from '../api/server.ts';
import { ApiError, errors } from '../api/status-errors.ts';
import type { DiscoveredEndpoint, DiscoveryResult } from '../model/discovery.ts';
import { API_VERSION, GROUP, SERVICE_INSTANCE, VERSION } from '../model/kinds.ts';
import type { Discovery } from '../p2p/discovery.ts';
import type { XenosNode } from '../p2p/node.ts';

const PATH = new RegExp(
  `^/apis/${GROUP.replace('.', '\\.')}/${VERSION}/namespaces/([^/]+)/discover/([^/]+)$`,
);
const DEFAULT_TIMEOUT_MS = 5_000;

export interface DiscoverEndpointsOptions {
  signal?: AbortSignal;
  /** ms, per DHT operation. */
  timeout?: number;
  /** Resolves once this host can run a DHT query (see dhtReady); awaited only before the slow path. */
  ready?: (options: { signal?: AbortSignal; timeout?: number }) => Promise<void>;
}

/** Live endpoints of `serviceType` in `namespace`, through the DHT. */
export async function discoverEndpoints(
  discovery: Discovery,
  namespace: string,
  serviceType: string,
  options: DiscoverEndpointsOptions = {},
): Promise<DiscoveryResult> {
  const { ready, ...opts } = options;
  // Fast path: the first peer near the key that answers with providers (or the providers this host verified
  // moments ago). Nothing found: maybe there is nothing, maybe this host has just started and knows only
  // peers that hold no provider record yet; then wait for the join and ask every peer near the key.
  let hosts = await discovery.discover(serviceType, opts);
  if (hosts.length === 0) {
    await ready?.(opts);
    hosts = await discovery.discover(serviceType, { ...opts, quorum: Number.POSITIVE_INFINITY });
  }
  const items: DiscoveredEndpoint[] = [];
  for (const h of hosts) {
    for (const i of h.instances) {
      if (i.namespace !== namespace) continue;
      const host = (i as { host?: unknown }).host;
      items.push({
        namespace: i.namespace,
        instance: i.name,
        ...(typeof host === 'string' ? { host } : {}),
        peerId: h.peerId,
        endpoints: i.endpoints,
      });
    }
  }
  items.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  return { apiVersion: API_VERSION, kind: 'DiscoveryResult', serviceType, namespace, items };
}

/**
 * Resolves once `node` can run a DHT query that reaches peers: its routing table knows one (kad-dht adds a
 * peer after identify on its connection), or it has joined. Not `joined()` alone: that waits for a whole
 * lookup of our own ID, seconds on a loaded machine, and a query walks towards its key from any peer.
 */
export async function dhtReady(
  node: XenosNode,
  options: { signal?: AbortSignal; timeout?: number },
): Promise<void> {
  const done = new AbortController();
  const signal = AbortSignal.any([done.signal, ...(options.signal ? [options.signal] : [])]);
  const known = (async () => {
    while (node.routingTableSize === 0) await sleep(10, undefined, { signal });
  })();
  try {
    await Promise.any([node.joined({ ...options, signal }), known]);
  } catch (err) {
    throw options.signal?.aborted ? options.signal.reason : err;
  } finally {
    done.abort();
  }
}

/** The route; `overlay()` is undefined while this host runs without p2p (then 503). */
export function discoverRoute(
  overlay: () => { discovery: Discovery; node: XenosNode } | undefined,
): ApiRoute {
  return async (req: IncomingMessage, res: ServerResponse, { url, path, principal }) => {
    const m = PATH.exec(path);
    if (!m) return false;
    const namespace = decodeURIComponent(m[1]);
    const serviceType = decodeURIComponent(m[2]);
    req.resume();
    if ((req.method ?? 'GET') !== 'GET') throw errors.methodNotAllowed(req.method ?? '', ['GET']);
    if (!authorize(principal, 'list', { group: GROUP, resource: SERVICE_INSTANCE.plural, namespace })) {
      throw errors.forbidden(
        `discover is forbidden: User "${principal.name}" cannot list resource "serviceinstances" in API group "${GROUP}" in the namespace "${namespace}"`,
      );
    }
    const o = overlay();
    if (!o) {
      throw new ApiError(
        503,
        'ServiceUnavailable',
        'this xenosd runs without the p2p overlay (start it with --p2p HOST:PORT to discover services)',
      );
    }
    const seconds = Number(url.searchParams.get('timeoutSeconds'));
    const timeout = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_TIMEOUT_MS;
    const signal = AbortSignal.timeout(timeout);
    try {
      const result = await discoverEndpoints(o.discovery, namespace, serviceType, {
        signal,
        timeout,
        ready: (opts) => dhtReady(o.node, opts),
      });
      sendJson(res, 200, result);
    } catch (err) {
      if (err instanceof TypeError) throw errors.badRequest(err.message);
      if (signal.aborted) {
        throw new ApiError(
          504,
          'Timeout',
          `discover ${serviceType}: the DHT gave no complete answer within ${timeout / 1000} s (this host is connected to ${o.node.connectedPeers().length} peers, ${o.node.routingTableSize} in its routing table); retry, or raise ?timeoutSeconds`,
        );
      }
      throw err;
    }
    return true;
  };
}
