// The HTTP client for xenosd's Kubernetes-shaped API: discovery, get/list/watch, create, patch
// (merge patch, also on /status), delete, events. Used by xenosctl's commands, by the tests and
// by any tool that talks to a host. Every call takes { signal } and has a timeout; errors become
// the named errors of errors.ts (ConnectionError, ApiStatusError, TimeoutError).

import type { XObject } from '../api/types.ts';
import { ApiStatusError, ConnectionError, type StatusBody, TimeoutError } from './errors.ts';

export const DEFAULT_TIMEOUT_MS = 30_000;

/** Where a kind's objects live in the API. `group` '' is the core group (`/api/v1`). */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** One entry of an `APIResourceList` (discovery). */
export interface ApiResource {
  name: string;
  singularName?: string;
  namespaced: boolean;
  kind: string;
  verbs?: string[];
  shortNames?: string[];
  categories?: string[];
}

export interface ApiResourceList {
  kind: 'APIResourceList';
  groupVersion: string;
  resources: ApiResource[];
}

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
}

interface RequestOptions extends CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
}

export class XenosClient {
  readonly server: string;
  private readonly token?: string;
  private readonly timeoutMs: number;
  private readonly userAgent: string;

  constructor(init: ClientInit) {
    this.server = init.server.replace(/\/+$/, '');
    this.token = init.token;
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.userAgent = init.userAgent ?? 'xenosctl';
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

  discovery(groupVersion: string, opts: CallOptions = {}): Promise<ApiResourceList> {
    return this.request('GET', `/apis/${groupVersion}`, opts);
  }

  get<T = XObject>(
    rt: ResourceType,
    name: string,
    opts: CallOptions & { namespace?: string } = {},
  ): Promise<T> {
    return this.request('GET', XenosClient.path(rt, { namespace: opts.namespace, name }), opts);
  }

  list<T = XObject>(rt: ResourceType, opts: ListOptions = {}): Promise<ObjectList<T>> {
    return this.request('GET', XenosClient.path(rt, { namespace: opts.namespace }), {
      ...opts,
      query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit },
    });
  }

  create<T = XObject>(rt: ResourceType, obj: unknown, opts: WriteOptions = {}): Promise<T> {
    return this.request('POST', XenosClient.path(rt, { namespace: opts.namespace }), {
      ...opts,
      body: obj,
      query: writeQuery(opts),
    });
  }

  /** A JSON merge patch (RFC 7386): `null` removes a field. */
  patch<T = XObject>(rt: ResourceType, name: string, patch: unknown, opts: PatchOptions = {}): Promise<T> {
    const path = XenosClient.path(rt, { namespace: opts.namespace, name, subresource: opts.subresource });
    return this.request('PATCH', path, {
      ...opts,
      body: patch,
      contentType: 'application/merge-patch+json',
      query: writeQuery(opts),
    });
  }

  /** Merge-patch the status subresource, as a controller (or a test) does. */
  patchStatus<T = XObject>(
    rt: ResourceType,
    name: string,
    status: unknown,
    opts: WriteOptions = {},
  ): Promise<T> {
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
  async *watch<T = XObject>(rt: ResourceType, opts: WatchOptions = {}): AsyncGenerator<WatchEvent<T>> {
    const url = this.url(XenosClient.path(rt, { namespace: opts.namespace }), {
      watch: 'true',
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: opts.timeoutSeconds,
      allowWatchBookmarks: 'true',
    });
    const res = await this.send('GET', url, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      forStream: true,
    });
    if (!res.ok) throw await this.statusError(res, 'GET', url);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf('\n');
          if (!line) continue;
          const ev = JSON.parse(line) as { type: string; object: unknown };
          if (ev.type === 'ERROR') {
            const st = ev.object as StatusBody;
            throw new ApiStatusError(st.code ?? 500, st, 'watch failed');
          }
          yield ev as WatchEvent<T>;
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      if (err instanceof ApiStatusError) throw err;
      throw this.transportError(err, url);
    }
  }

  /** Any request; JSON in and out. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = this.url(path, opts.query);
    const res = await this.send(method, url, opts);
    if (!res.ok) throw await this.statusError(res, method, url);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    }
    return u.toString();
  }

  private async send(
    method: string,
    url: string,
    opts: RequestOptions & { forStream?: boolean },
  ): Promise<Response> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const signals: AbortSignal[] = [];
    if (opts.signal) signals.push(opts.signal);
    // A stream's timeout only covers getting the response headers.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new TimeoutError('')), timeoutMs);
    signals.push(timeout.signal);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    try {
      return await fetch(url, { method, headers, body, signal: AbortSignal.any(signals) });
    } catch (err) {
      if (timeout.signal.aborted && !opts.signal?.aborted) {
        throw new TimeoutError(
          `xenosd at ${this.server} did not answer ${method} ${new URL(url).pathname} within ${timeoutMs} ms`,
        );
      }
      if (opts.signal?.aborted) throw err;
      throw this.transportError(err, url);
    } finally {
      clearTimeout(timer);
    }
  }

  private transportError(err: unknown, url: string): Error {
    const code = errorCode(err);
    const why: Record<string, string> = {
      ECONNREFUSED: 'connection refused',
      ENOTFOUND: 'host not found',
      EAI_AGAIN: 'host not found',
      ECONNRESET: 'connection reset',
      EHOSTUNREACH: 'host unreachable',
      ETIMEDOUT: 'connection timed out',
      UND_ERR_SOCKET: 'connection closed',
    };
    if (code) return new ConnectionError(this.server, why[code] ?? code.toLowerCase(), err);
    if (err instanceof SyntaxError)
      return new ConnectionError(this.server, `bad response to ${url}: ${err.message}`, err);
    return new ConnectionError(this.server, err instanceof Error ? err.message : String(err), err);
  }

  private async statusError(res: Response, method: string, url: string): Promise<ApiStatusError> {
    const text = await res.text().catch(() => '');
    let body: StatusBody | undefined;
    try {
      const parsed = JSON.parse(text) as StatusBody;
      if (parsed && typeof parsed === 'object') body = parsed;
    } catch {
      // not JSON: the text itself is the message
    }
    const path = new URL(url).pathname;
    const fallback = text.trim()
      ? text.trim().slice(0, 300)
      : `${method} ${path}: HTTP ${res.status} ${res.statusText}`;
    return new ApiStatusError(res.status, body, fallback);
  }
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

/** The errno-like code of a fetch failure (undici wraps it in `cause`, sometimes an AggregateError). */
function errorCode(err: unknown): string | undefined {
  let e: any = err;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string' && e.code !== 'ABORT_ERR') return e.code;
    if (Array.isArray(e.errors) && e.errors.length) e = e.errors[0];
    else e = e.cause;
  }
  return undefined;
}
