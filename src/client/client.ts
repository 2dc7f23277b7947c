// The HTTP client for xenosd's Kubernetes-shaped API: discovery, get/list/watch, create, patch
// (merge patch, also on /status), delete, events. Used by xenosctl's commands, by the tests and
// by any tool that talks to a host. Every call takes { signal } and has a timeout; errors become
// the named errors of errors.ts (ConnectionError, ApiStatusError, TimeoutError).
// Over 400 lines because it is one class with one method per API verb, each a few lines over the
// shared request and watch code; splitting it would scatter the one surface callers learn.

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { DiscoveryResourceList, ResourceType } from '../model/api-resource.ts';
import type { ObjectOf } from '../model/kinds.ts';
import type { XObject } from '../model/object.ts';
import { ApiStatusError, ClientError, ConnectionError, type StatusBody, TimeoutError } from './errors.ts';

export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ObjectList<T = XObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchEvent<T = XObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
  object: T;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the client's per-request timeout. */
  timeoutMs?: number;
}

export interface ListOptions extends CallOptions {
  /** Omit for all namespaces (namespaced kinds) or for cluster-scoped kinds. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
}

export interface WatchOptions extends ListOptions {
  resourceVersion?: string;
  /** Ask the server to end the watch after this long. */
  timeoutSeconds?: number;
}

export interface WriteOptions extends CallOptions {
  namespace?: string;
  dryRun?: boolean;
  fieldManager?: string;
}

export interface PatchOptions extends WriteOptions {
  subresource?: 'status';
}

export interface ClientInit {
  /** Base URL, e.g. http://127.0.0.1:7443 */
  server: string;
  token?: string;
  timeoutMs?: number;
  userAgent?: string;
  /** PEM CA certificate(s) to trust for an https server (e.g. xenosd's self-signed tls.crt). */
  ca?: string | Buffer;
  /** Do not check the server's certificate (testing only). */
  insecureSkipTlsVerify?: boolean;
}

interface RequestOptions extends CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** A byte stream sent as is (an image upload piece), with its headers (Content-Length, Content-Range). */
  bytes?: { stream: NodeJS.ReadableStream; headers: Record<string, string> };
}

export class XenosClient {
  readonly server: string;
  private readonly token?: string;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly agent: http.Agent;
  private readonly tls: https.RequestOptions;

  constructor(init: ClientInit) {
    this.server = init.server.replace(/\/+$/, '');
    this.token = init.token;
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.userAgent = init.userAgent ?? 'xenosctl';
    const secure = this.server.startsWith('https:');
    // Keep-alive: apply sends a GET and a POST/PATCH per object, over one connection.
    this.agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.tls = secure ? { ca: init.ca, rejectUnauthorized: !init.insecureSkipTlsVerify } : {};
  }

  /** The path of a collection, an object or an object's subresource. */
  static path(
    rt: ResourceType,
    opts: { namespace?: string; name?: string; subresource?: string } = {},
  ): string {
    let p = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
    if (rt.namespaced && opts.namespace) p += `/namespaces/${encodeURIComponent(opts.namespace)}`;
    p += `/${rt.plural}`;
    if (opts.name !== undefined) p += `/${encodeURIComponent(opts.name)}`;
    if (opts.subresource) p += `/${opts.subresource}`;
    return p;
  }

  version(opts: CallOptions = {}): Promise<Record<string, string>> {
    return this.request('GET', '/version', opts);
  }

  discovery(groupVersion: string, opts: CallOptions = {}): Promise<DiscoveryResourceList> {
    return this.request('GET', `/apis/${groupVersion}`, opts);
  }

  get<R extends ResourceType>(
    rt: R,
    name: string,
    opts: CallOptions & { namespace?: string } = {},
  ): Promise<ObjectOf<R['kind']>> {
    return this.request('GET', XenosClient.path(rt, { namespace: opts.namespace, name }), opts);
  }

  list<R extends ResourceType>(rt: R, opts: ListOptions = {}): Promise<ObjectList<ObjectOf<R['kind']>>> {
    return this.request('GET', XenosClient.path(rt, { namespace: opts.namespace }), {
      ...opts,
      query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit },
    });
  }

  create<R extends ResourceType>(rt: R, obj: unknown, opts: WriteOptions = {}): Promise<ObjectOf<R['kind']>> {
    return this.request('POST', XenosClient.path(rt, { namespace: opts.namespace }), {
      ...opts,
      body: obj,
      query: writeQuery(opts),
    });
  }

  /** A JSON merge patch (RFC 7386): `null` removes a field. */
  patch<R extends ResourceType>(
    rt: R,
    name: string,
    patch: unknown,
    opts: PatchOptions = {},
  ): Promise<ObjectOf<R['kind']>> {
    const path = XenosClient.path(rt, { namespace: opts.namespace, name, subresource: opts.subresource });
    return this.request('PATCH', path, {
      ...opts,
      body: patch,
      contentType: 'application/merge-patch+json',
      query: writeQuery(opts),
    });
  }

  /** Server-side apply of `obj` (its fields become `fieldManager`'s; a field another manager owns with
   *  another value is a 409 unless `force`). Creates the object when it is missing. */
  serverSideApply<R extends ResourceType>(
    rt: R,
    obj: XObject,
    opts: WriteOptions & { fieldManager: string; force?: boolean },
  ): Promise<ObjectOf<R['kind']>> {
    const path = XenosClient.path(rt, { namespace: opts.namespace, name: obj.metadata.name });
    return this.request('PATCH', path, {
      ...opts,
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: { ...writeQuery(opts), force: opts.force ? 'true' : undefined },
    });
  }

  /** Merge-patch the status subresource, as a controller (or a test) does. */
  patchStatus<R extends ResourceType>(
    rt: R,
    name: string,
    status: unknown,
    opts: WriteOptions = {},
  ): Promise<ObjectOf<R['kind']>> {
    return this.patch(rt, name, { status }, { ...opts, subresource: 'status' });
  }

  /** Returns what the server answered: the object (with deletionTimestamp if finalizers hold it)
   *  or a `Status`. */
  delete(rt: ResourceType, name: string, opts: WriteOptions = {}): Promise<XObject | StatusBody> {
    return this.request('DELETE', XenosClient.path(rt, { namespace: opts.namespace, name }), {
      ...opts,
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' },
      query: { dryRun: opts.dryRun ? 'All' : undefined },
    });
  }

  /** Events about one object (`/api/v1/namespaces/{ns}/events`). A server without events gives []. */
  async events(
    namespace: string,
    involvedName: string,
    opts: CallOptions & { kind?: string } = {},
  ): Promise<KubeEvent[]> {
    const fieldSelector = [
      `involvedObject.name=${involvedName}`,
      opts.kind ? `involvedObject.kind=${opts.kind}` : '',
    ]
      .filter(Boolean)
      .join(',');
    try {
      const list = await this.request<ObjectList<KubeEvent>>(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        { ...opts, query: { fieldSelector } },
      );
      return list.items ?? [];
    } catch (err) {
      if (err instanceof ApiStatusError && err.code === 404) return [];
      throw err;
    }
  }

  /**
   * Streams watch events from `resourceVersion` on. Ends when the server ends the stream or
   * `signal` aborts (then it returns quietly). A 410 (too old a resourceVersion) is thrown as an
   * ApiStatusError with code 410: list again and watch from the new resourceVersion.
   */
  async *watch<R extends ResourceType>(
    rt: R,
    opts: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<ObjectOf<R['kind']>>> {
    const url = this.url(XenosClient.path(rt, { namespace: opts.namespace }), {
      watch: 'true',
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: opts.timeoutSeconds,
      allowWatchBookmarks: 'true',
    });
    const res = await this.send('GET', url, { signal: opts.signal, timeoutMs: opts.timeoutMs });
    if (res.statusCode !== 200) throw await this.statusError(res, 'GET', url);
    let buffered = '';
    res.setEncoding('utf8');
    try {
      for await (const chunk of res as AsyncIterable<string>) {
        buffered += chunk;
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf('\n');
          if (!line) continue;
          // One watch event a line, as the API sends it; an ERROR event carries a Status.
          const ev: WatchEvent<ObjectOf<R['kind']>> | { type: 'ERROR'; object: StatusBody } =
            JSON.parse(line);
          if (ev.type === 'ERROR') throw new ApiStatusError(ev.object.code ?? 500, ev.object, 'watch failed');
          yield ev;
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (err instanceof ApiStatusError) throw err;
      throw this.transportError(err, url);
    } finally {
      res.destroy();
    }
  }

  /**
   * A GET whose answer is a byte stream (an instance's log): resolves once the server answered 200, then
   * yields the body as it arrives. Ends when the server ends it; returns quietly when `signal` aborts.
   * An error status is thrown as an ApiStatusError before anything is yielded.
   */
  async stream(
    path: string,
    opts: CallOptions & { query?: RequestOptions['query'] } = {},
  ): Promise<AsyncIterable<Buffer>> {
    const url = this.url(path, opts.query);
    const res = await this.send('GET', url, opts);
    if (res.statusCode !== 200) throw await this.statusError(res, 'GET', url);
    const server = this.server;
    return (async function* body() {
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) yield chunk;
      } catch (err) {
        if (opts.signal?.aborted) return;
        const why = errorCode(err)?.toLowerCase() ?? (err as Error).message;
        throw new ClientError(
          `the stream from xenosd at ${server} broke off (${why}); run the command again`,
          {
            cause: err,
          },
        );
      } finally {
        res.destroy();
      }
    })();
  }

  /** Any request; JSON in and out. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return (await this.exchange<T>(method, path, opts)).body;
  }

  /** Any request, JSON in (or a byte stream, `bytes`) and out, with the status code (201 and 202 differ
   *  in the image upload API). */
  async exchange<T>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<{ code: number; body: T }> {
    const url = this.url(path, opts.query);
    const res = await this.send(method, url, opts);
    const text = await readBody(res, opts.signal);
    if (res.statusCode === undefined || res.statusCode >= 300)
      throw this.statusErrorFrom(res, text, method, url);
    try {
      return { code: res.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
    } catch {
      throw new ConnectionError(
        this.server,
        `${method} ${new URL(url).pathname} answered with something other than JSON`,
      );
    }
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    }
    return u.toString();
  }

  /** Sends a request; resolves with the response once its headers are in. The timeout covers
   *  only that: a watch's body may stream for as long as the caller wants. */
  private send(
    method: string,
    url: string,
    opts: RequestOptions,
    retry = !opts.bytes,
  ): Promise<IncomingMessage> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    if (opts.bytes)
      Object.assign(headers, { 'content-type': 'application/octet-stream' }, opts.bytes.headers);
    const u = new URL(url);
    const transport = u.protocol === 'https:' ? https : http;
    return new Promise<IncomingMessage>((resolve, reject) => {
      if (opts.signal?.aborted) {
        reject(opts.signal.reason);
        return;
      }
      const req = transport.request(u, { method, headers, agent: this.agent, ...this.tls });
      const onAbort = () => req.destroy(opts.signal?.reason ?? new Error('aborted'));
      const timer = setTimeout(() => {
        req.destroy(
          new TimeoutError(
            `xenosd at ${this.server} did not answer ${method} ${u.pathname} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('response', (res) => {
        clearTimeout(timer);
        // Aborting later must still end a streaming body.
        res.on('close', done);
        resolve(res);
      });
      req.on('error', (err) => {
        done();
        if (opts.signal?.aborted) reject(opts.signal.reason);
        else if (err instanceof TimeoutError) reject(err);
        else if (retry && req.reusedSocket && errorCode(err) === 'ECONNRESET') {
          // A kept-alive connection the server closed as idle just as this request went out on it: the
          // server never read the request, so it goes again on a fresh connection (once).
          this.send(method, url, opts, false).then(resolve, reject);
        } else reject(this.transportError(err, url));
      });
      if (opts.bytes) {
        opts.bytes.stream.on('error', (err) => req.destroy(err));
        opts.bytes.stream.pipe(req);
      } else req.end(body);
    });
  }

  private transportError(err: unknown, url: string): Error {
    if (err instanceof ConnectionError || err instanceof TimeoutError) return err;
    const code = errorCode(err);
    const why: Record<string, string> = {
      ECONNREFUSED: 'connection refused',
      ENOTFOUND: 'host not found',
      EAI_AGAIN: 'host not found',
      ECONNRESET: 'connection reset',
      EHOSTUNREACH: 'host unreachable',
      ETIMEDOUT: 'connection timed out',
      EPROTO: 'TLS handshake failed (is it http rather than https?)',
      DEPTH_ZERO_SELF_SIGNED_CERT:
        "self-signed certificate; pass --certificate-authority (the data dir's tls.crt)",
      SELF_SIGNED_CERT_IN_CHAIN: 'untrusted certificate; pass --certificate-authority',
      UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted certificate; pass --certificate-authority',
      ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not name this host',
    };
    if (code) return new ConnectionError(this.server, why[code] ?? code.toLowerCase(), err);
    return new ConnectionError(
      this.server,
      `${new URL(url).pathname}: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  }

  private async statusError(res: IncomingMessage, method: string, url: string): Promise<ApiStatusError> {
    const text = await readBody(res).catch(() => '');
    return this.statusErrorFrom(res, text, method, url);
  }

  private statusErrorFrom(res: IncomingMessage, text: string, method: string, url: string): ApiStatusError {
    let body: StatusBody | undefined;
    try {
      const parsed = JSON.parse(text) as StatusBody;
      if (parsed && typeof parsed === 'object') body = parsed;
    } catch {
      // not JSON: the text itself is the message
    }
    const path = new URL(url).pathname;
    const code = res.statusCode ?? 0;
    const fallback = text.trim()
      ? text.trim().slice(0, 300)
      : `${method} ${path}: HTTP ${code} ${res.statusMessage ?? ''}`;
    return new ApiStatusError(code, body, fallback);
  }
}

async function readBody(res: IncomingMessage, signal?: AbortSignal): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  try {
    for await (const chunk of res as AsyncIterable<string>) text += chunk;
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
  return text;
}

/** A Kubernetes Event, as much of it as describe shows. */
export interface KubeEvent {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
  source?: { component?: string; host?: string };
  reportingController?: string;
  metadata?: { creationTimestamp?: string };
}

function writeQuery(opts: WriteOptions): Record<string, string | undefined> {
  return { dryRun: opts.dryRun ? 'All' : undefined, fieldManager: opts.fieldManager };
}

/** The errno-like code of a socket failure (an AggregateError when several addresses were tried). */
function errorCode(err: unknown): string | undefined {
  let e: any = err;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string' && e.code !== 'ABORT_ERR') return e.code;
    if (Array.isArray(e.errors) && e.errors.length) e = e.errors[0];
    else e = e.cause;
  }
  return undefined;
}
