// The API's discover endpoint: GET /apis/xenos.io/v1alpha1/namespaces/{ns}/discover/{serviceType}
// returns the live endpoints of a service type. A host answers from the replicated store it already holds
// (store-discovery.ts: every host has every instance's status and endpoints, and its membership says which
// hosts are live) — no network round trip — and asks the DHT only for what the store lacks: when it holds
// no live endpoint of the type (a host that has just joined and not yet synced, or a type whose
// instances are not in this cluster's store), the provider records for the type, then each provider's
// fresh signed host record. The answer's `source` says which path answered. `?from=store|dht` asks one
// path only (default `auto`). `?timeoutSeconds=N` bounds the whole answer (default 5; past it, 504).
// Needs `get` on the `discover` resource (an instance-scoped token has it in its own namespace: services
// find each other) or `list` on serviceinstances in the namespace. The DHT path asks at once (the peers nearest the key,
// see Discovery.discover) and only when that finds nothing waits until this host's DHT routing table
// knows a peer and asks every peer near the key: no join wait up front.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { authorize, DISCOVER_RESOURCE } from '../api/auth.ts';
import { sendJson } from '../api/http-io.ts';
import type { ApiRoute } from '../api/server.ts';
import { ApiError, errors } from '../api/status-errors.ts';
import {
  checkServiceType,
  type DiscoveredEndpoint,
  type DiscoveryResult,
  type DiscoverySource,
} from '../model/discovery.ts';
import { API_VERSION, GROUP, SERVICE_INSTANCE, VERSION } from '../model/kinds.ts';
import type { Discovery } from '../p2p/discovery.ts';
import type { XenosNode } from '../p2p/node.ts';
import { discoverFromStore, type StoreDiscoveryComponents } from './store-discovery.ts';

const PATH = new RegExp(
  `^/apis/${GROUP.replace('.', '\\.')}/${VERSION}/namespaces/([^/]+)/discover/([^/]+)$`,
);
const DEFAULT_TIMEOUT_MS = 5_000;
const FROM = ['auto', 'store', 'dht'] as const;
export type DiscoverFrom = (typeof FROM)[number];

/** What a host discovers with: its store and liveness view (always), and the overlay (with --p2p). */
export interface DiscoverSources {
  local?: StoreDiscoveryComponents;
  overlay?: { discovery: Discovery; node: XenosNode };
}

export interface DiscoverEndpointsOptions {
  signal?: AbortSignal;
  /** ms, per DHT operation. */
  timeout?: number;
  /** Resolves once this host can run a DHT query (see dhtReady); awaited only before the slow path. */
  ready?: (options: { signal?: AbortSignal; timeout?: number }) => Promise<void>;
}

/**
 * Live endpoints of `serviceType` in `namespace`: from the store when it holds any (`from: 'auto'`, the
 * default), else through the DHT; `from` 'store' or 'dht' asks that path only.
 */
export async function discover(
  sources: DiscoverSources,
  namespace: string,
  serviceType: string,
  options: DiscoverEndpointsOptions & { from?: DiscoverFrom } = {},
): Promise<DiscoveryResult> {
  const { from = 'auto', ...opts } = options;
  checkServiceType(serviceType); // a bad name is a TypeError on every path
  if (from !== 'dht' && sources.local) {
    const items = discoverFromStore(sources.local, namespace, serviceType);
    if (items.length > 0 || from === 'store' || !sources.overlay)
      return result('store', namespace, serviceType, items);
  }
  if (!sources.overlay) throw new OverlayMissingError();
  const found = await discoverEndpoints(sources.overlay.discovery, namespace, serviceType, opts);
  // A DHT record outlives its host by up to its lifetime: hold its answers to this host's liveness view,
  // as the store path does, so a dead host's endpoints leave discovery within the host timeout.
  const local = sources.local;
  if (!local) return found;
  return { ...found, items: found.items.filter((i) => i.host === undefined || local.isLive(i.host)) };
}

/** discover(from: 'dht') without an overlay. */
export class OverlayMissingError extends Error {
  constructor() {
    super(
      'this xenosd runs without the p2p overlay (start it with --p2p HOST:PORT to discover services through the DHT)',
    );
    this.name = 'OverlayMissingError';
  }
}

function result(
  source: DiscoverySource,
  namespace: string,
  serviceType: string,
  items: DiscoveredEndpoint[],
): DiscoveryResult {
  items.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  return { apiVersion: API_VERSION, kind: 'DiscoveryResult', serviceType, namespace, source, items };
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
  return result('dht', namespace, serviceType, items);
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

/** The route; `sources()` is read per request (the overlay is undefined without p2p: `from=dht` is then 503). */
export function discoverRoute(sources: () => DiscoverSources): ApiRoute {
  return async (req: IncomingMessage, res: ServerResponse, { url, path, principal }) => {
    const m = PATH.exec(path);
    if (!m) return false;
    const namespace = decodeURIComponent(m[1]);
    const serviceType = decodeURIComponent(m[2]);
    req.resume();
    if ((req.method ?? 'GET') !== 'GET') throw errors.methodNotAllowed(req.method ?? '', ['GET']);
    if (
      !authorize(principal, 'get', { group: GROUP, resource: DISCOVER_RESOURCE, namespace }) &&
      !authorize(principal, 'list', { group: GROUP, resource: SERVICE_INSTANCE.plural, namespace })
    ) {
      throw errors.forbidden(
        `discover is forbidden: User "${principal.name}" cannot get resource "discover" (or list "serviceinstances") in API group "${GROUP}" in the namespace "${namespace}"`,
      );
    }
    const from = url.searchParams.get('from') ?? 'auto';
    if (!(FROM as readonly string[]).includes(from))
      throw errors.badRequest(`from=${JSON.stringify(from)}: must be one of ${FROM.join(', ')}`);
    const seconds = Number(url.searchParams.get('timeoutSeconds'));
    const timeout = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_TIMEOUT_MS;
    const signal = AbortSignal.timeout(timeout);
    const src = sources();
    const o = src.overlay;
    try {
      const result = await discover(src, namespace, serviceType, {
        signal,
        timeout,
        from: from as DiscoverFrom,
        ...(o ? { ready: (opts: { signal?: AbortSignal; timeout?: number }) => dhtReady(o.node, opts) } : {}),
      });
      sendJson(res, 200, result);
    } catch (err) {
      if (err instanceof TypeError) throw errors.badRequest(err.message);
      if (err instanceof OverlayMissingError) throw new ApiError(503, 'ServiceUnavailable', err.message);
      if (signal.aborted && o) {
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
