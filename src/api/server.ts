// The Kubernetes-shaped HTTP API of one xenosd: authentication, routing of
// /apis/<group>/<version>/[namespaces/<ns>/]<plural>[/<name>[/status|/log]] and /api/v1 events to the
// resource handlers (instance logs to the LogSource), discovery and OpenAPI. Errors are always
// Kubernetes `Status` objects.
// `start()` listens (port 0 picks a free port, see `address`); `stop()` ends watches and closes.

import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type Log, silentLogger } from '../log/logger.ts';
import type { ApiMetrics } from '../metrics/host-metrics.ts';
import type { ApiResource } from '../model/api-resource.ts';
import { SERVICE_INSTANCE } from '../model/kinds.ts';
import type { Store } from '../store/store.ts';
import type { ApiResources } from './api-resources.ts';
import { authorize, type Principal, type TokenAuthenticator, type Verb } from './auth.ts';
import { BodyDecoder } from './body-decoder.ts';
import { apiGroup, apiGroupList, apiResourceList, versionInfo } from './discovery.ts';
import { booleanParam, sendError, sendJson } from './http-io.ts';
import { type LogSource, parseLogQuery, serveLogs } from './log-subresource.ts';
import { OpenApiDocs } from './openapi.ts';
import { DEFAULT_BODY_LIMIT } from './request-body.ts';
import { ResourceHandlers, type ResourceRequest } from './resource-handlers.ts';
import { errors, toApiError } from './status-errors.ts';
import type { Validator } from './validation.ts';
import { Watches } from './watch.ts';

export interface ApiServerComponents {
  store: Store;
  resources: ApiResources;
  validator: Validator;
  auth: TokenAuthenticator;
  /** Where `serviceinstances/{name}/log` reads from; absent: the log subresource answers 503. */
  logs?: LogSource;
  /** Each request's verb, resource, code and latency go here (the host's /metrics). */
  metrics?: ApiMetrics;
}

export interface ApiServerInit {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  bodyLimit?: number;
  /** Open watches each principal may hold (default MAX_WATCHES_PER_PRINCIPAL in input-limits.ts). */
  maxWatchesPerPrincipal?: number;
  /** Events each principal may create (default EVENT_RATE_LIMIT in input-limits.ts). */
  eventRateLimit?: { burst: number; perSecond: number };
  /** PEM certificate and key: serve HTTPS instead of HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Reported in /version. */
  version?: string;
  log?: Log;
  /** Routes served beside the resources (e.g. the cluster's discover endpoint), tried in order after
   *  authentication: a route returns false when the path is not its own. Errors become Status objects. */
  routes?: ApiRoute[];
}

/** An extra route of the API; `principal` is authenticated, the route authorizes. */
export type ApiRoute = (
  req: IncomingMessage,
  res: ServerResponse,
  ctx: { url: URL; path: string; principal: Principal },
) => Promise<boolean> | boolean;

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 7443;
const HEALTH_PATHS = new Set(['/healthz', '/readyz', '/livez']);

export class ApiServer {
  readonly #components: ApiServerComponents;
  readonly #init: ApiServerInit;
  readonly #handlers: ResourceHandlers;
  readonly #watches: Watches;
  readonly #openapi: OpenApiDocs;
  readonly #decoder = new BodyDecoder();
  readonly #log: Log;
  #server?: Server;
  #ready = false;
  /** Aborted by stop(): ends followed logs. */
  #stopping = new AbortController();
  /** The verb and resource of each request once authorization named them, for the metrics. */
  readonly #labels = new WeakMap<IncomingMessage, { verb: string; resource: string }>();

  constructor(components: ApiServerComponents, init: ApiServerInit = {}) {
    this.#components = components;
    this.#init = init;
    this.#log = init.log ?? silentLogger.root;
    this.#handlers = new ResourceHandlers(
      { ...components, decoder: this.#decoder },
      {
        bodyLimit: init.bodyLimit ?? DEFAULT_BODY_LIMIT,
        eventRateLimit: init.eventRateLimit,
      },
    );
    this.#watches = new Watches(
      { store: components.store, handlers: this.#handlers },
      { maxPerPrincipal: init.maxWatchesPerPrincipal },
    );
    this.#openapi = new OpenApiDocs(components.resources);
  }

  get scheme(): 'http' | 'https' {
    return this.#init.tls ? 'https' : 'http';
  }

  /** Where it listens, once started. */
  get address(): { host: string; port: number } {
    const a = this.#server?.address() as AddressInfo | null;
    if (!a) throw new Error('the API server is not listening; call start() first');
    return { host: a.address, port: a.port };
  }

  get url(): string {
    const { host, port } = this.address;
    return `${this.scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    this.#stopping = new AbortController();
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#measure(req, res);
      this.#handle(req, res).catch((err) => {
        this.#log.error({ err, method: req.method, url: req.url }, `${req.method} ${req.url} failed`);
        sendError(res, errors.internal());
      });
    };
    const server = this.#init.tls ? createHttpsServer(this.#init.tls, handler) : createHttpServer(handler);
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#init.port ?? DEFAULT_PORT, this.#init.host ?? DEFAULT_HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#ready = true;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#ready = false;
    this.#watches.closeAll();
    this.#decoder.stop();
    this.#stopping.abort(new Error('xenosd is stopping'));
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      // Requests still running get a moment; then the sockets go.
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    });
    this.#server = undefined;
  }

  /** Reports the request to the metrics once its answer has ended (health probes are not counted). */
  #measure(req: IncomingMessage, res: ServerResponse): void {
    const metrics = this.#components.metrics;
    if (!metrics || HEALTH_PATHS.has((req.url ?? '/').split('?')[0].replace(/\/+$/, ''))) return;
    const began = performance.now();
    res.once('close', () => {
      const labels = this.#labels.get(req) ?? { verb: (req.method ?? 'GET').toLowerCase(), resource: '' };
      metrics.request({ ...labels, code: res.statusCode }, (performance.now() - began) / 1000);
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://api');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (HEALTH_PATHS.has(path)) {
      res
        .writeHead(this.#ready ? 200 : 503, { 'Content-Type': 'text/plain' })
        .end(this.#ready ? 'ok' : 'stopping');
      return;
    }
    const principal = this.#components.auth.authenticate(req.headers.authorization);
    if (!principal) {
      // Drain what the client sent so it reads the answer instead of a reset.
      req.resume();
      sendError(res, errors.unauthorized());
      return;
    }
    try {
      await this.#route(req, res, url, path, principal);
    } catch (err) {
      const api = toApiError(err);
      if (api.code >= 500)
        this.#log.error({ err, method: req.method, path }, `${req.method} ${path}: ${api.message}`);
      req.resume();
      sendError(res, api);
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse, url: URL, path: string, principal: Principal) {
    const method = req.method ?? 'GET';
    const resources = this.#components.resources;
    const getOnly = (body: unknown) => {
      if (method !== 'GET') throw errors.methodNotAllowed(method, ['GET']);
      if (body === undefined) throw errors.pathNotFound(path);
      sendJson(res, 200, body);
    };
    for (const route of this.#init.routes ?? []) {
      if (await route(req, res, { url, path, principal })) return;
    }
    if (path === '/version') return getOnly(versionInfo(this.#init.version ?? '0.0.0'));
    if (path === '/apis') return getOnly(apiGroupList(resources));
    if (path === '/openapi/v3') return getOnly(this.#openapi.index());
    if (path.startsWith('/openapi/v3/')) {
      const doc = this.#openapi.document(path.slice('/openapi/v3/'.length));
      return getOnly(doc);
    }
    const seg = path
      .split('/')
      .filter(Boolean)
      .map((s) => decodePathSegment(s, path));
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === 'api' && seg[1] === 'v1') [group, version, rest] = ['', 'v1', seg.slice(2)];
    else if (seg[0] === 'apis' && seg.length >= 3) [group, version, rest] = [seg[1], seg[2], seg.slice(3)];
    else if (seg[0] === 'apis' && seg.length === 2) return getOnly(apiGroup(resources, seg[1]));
    else throw errors.pathNotFound(path);
    if (rest.length === 0) return getOnly(apiResourceList(resources, group, version));

    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const resource = resources.find(group, version, rest[0]);
    if (!resource || rest.length > 3) throw errors.pathNotFound(path);
    if (!resource.namespaced && namespace !== undefined) throw errors.pathNotFound(path);
    const name = rest[1];
    let subresource: 'status' | undefined;
    const r: ResourceRequest = { req, res, query: url.searchParams, resource, namespace, name, principal };
    if (rest.length === 3) {
      if (rest[2] === 'log' && resource.logSubresource && namespace !== undefined)
        return this.#serveLog(r, method);
      if (rest[2] === 'scale' && resource.scale && (namespace !== undefined || !resource.namespaced))
        return this.#serveScale(r, method);
      if (rest[2] !== 'status' || !resource.statusSubresource) throw errors.pathNotFound(path);
      subresource = 'status';
    }
    await this.#dispatch({ ...r, subresource }, method);
  }

  /** <plural>/<name>/scale: authorized as `get`, `update` or `patch` on the `scale` subresource. */
  async #serveScale(r: ResourceRequest, method: string): Promise<void> {
    const verbs = { GET: 'get', PUT: 'update', PATCH: 'patch' } as const;
    if (method !== 'GET' && method !== 'PUT' && method !== 'PATCH')
      throw errors.methodNotAllowed(method, ['GET', 'PUT', 'PATCH']);
    this.#authorize(r, verbs[method], 'scale');
    await this.#handlers.scale(r, method);
  }

  /** GET <plural>/<name>/log: authorized as `get` on the `log` subresource. */
  async #serveLog(r: ResourceRequest, method: string): Promise<void> {
    if (method !== 'GET') throw errors.methodNotAllowed(method, ['GET']);
    this.#authorize(r, 'get', 'log');
    const query = parseLogQuery(r.query);
    const key = { kind: r.resource.kind, namespace: r.namespace ?? '', name: r.name! };
    const instance = this.#components.store.get({ ...key, kind: SERVICE_INSTANCE.kind });
    if (!instance) {
      const { plural, group, kind } = r.resource;
      throw errors.notFound({ plural, group, kind, name: r.name });
    }
    await serveLogs(
      r.req,
      r.res,
      { instance, source: this.#components.logs, stopSignal: this.#stopping.signal },
      query,
      this.#log,
    );
  }

  async #dispatch(r: ResourceRequest, method: string): Promise<void> {
    const h = this.#handlers;
    const allNamespaces = r.resource.namespaced && r.namespace === undefined;
    if (r.name === undefined) {
      const watch = booleanParam(r.query, 'watch');
      if (method === 'GET') {
        this.#authorize(r, watch ? 'watch' : 'list');
        return watch ? this.#watches.serve(r) : h.list(r);
      }
      if (method === 'POST' && !allNamespaces) {
        this.#authorize(r, 'create');
        return h.create(r);
      }
      throw errors.methodNotAllowed(method, allNamespaces ? ['GET'] : ['GET', 'POST']);
    }
    if (allNamespaces) throw errors.pathNotFound(r.req.url ?? '');
    switch (method) {
      case 'GET':
        this.#authorize(r, 'get');
        return h.get(r);
      case 'PUT':
        this.#authorize(r, 'update');
        return h.update(r);
      case 'PATCH':
        this.#authorize(r, 'patch');
        return h.patch(r);
      case 'DELETE':
        if (r.subresource) break;
        this.#authorize(r, 'delete');
        return h.delete(r);
    }
    throw errors.methodNotAllowed(
      method,
      r.subresource ? ['GET', 'PUT', 'PATCH'] : ['GET', 'PUT', 'PATCH', 'DELETE'],
    );
  }

  #authorize(r: ResourceRequest, verb: Verb, subresource: string | undefined = r.subresource): void {
    this.#labels.set(r.req, {
      verb,
      resource: `${r.resource.plural}${subresource ? `/${subresource}` : ''}`,
    });
    // A list or watch pinned to one name (kubectl wait, get -w NAME) is about that object.
    const pinned = /^metadata\.name=([^,]+)$/.exec(r.query.get('fieldSelector') ?? '')?.[1];
    const attrs = {
      group: r.resource.group,
      resource: r.resource.plural,
      subresource,
      namespace: r.namespace,
      name: r.name ?? pinned,
    };
    if (authorize(r.principal, verb, attrs)) return;
    const where = r.namespace ? ` in the namespace "${r.namespace}"` : '';
    throw errors.forbidden(
      `${describe(r.resource)}${r.name ? ` "${r.name}"` : ''} is forbidden: User "${r.principal.name}" cannot ${verb} resource "${r.resource.plural}${subresource ? `/${subresource}` : ''}" in API group "${r.resource.group}"${where}`,
    );
  }
}

/** One `%`-encoded path segment; a malformed escape is the client's mistake (400), not a 500. */
function decodePathSegment(segment: string, path: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw errors.badRequest(`the path ${JSON.stringify(path)} has a malformed %-escape in "${segment}"`);
  }
}

function describe(r: ApiResource): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}
