// The LogSource of one xenosd: the log of an instance that runs here is read from this host's driver;
// the log of an instance that runs on another host is forwarded from that host over the p2p overlay
// (log-forwarding.ts), which this part also serves for its peers. A followed log ends when the domain
// is gone (destroyed, moved away), when the reader leaves, or when xenosd stops. A part for
// Daemon.use(): start() registers the stream protocol once the overlay runs; stop() ends every stream.

import { setTimeout as sleep } from 'node:timers/promises';
import type { InstanceLogOptions, LogSource } from '../api/log-subresource.ts';
import { errors } from '../api/status-errors.ts';
import { type Driver, domainIdFor } from '../drivers/driver.ts';
import type { Log } from '../log/logger.ts';
import { HOST, SERVICE_INSTANCE } from '../model/kinds.ts';
import type { ServiceInstance } from '../model/service-instance.ts';
import type { Store } from '../store/store.ts';
// log-forwarding.ts (and @libp2p/utils with it) is loaded with `import()` only on a host in an overlay.
import type { LogForwardRequest, LogStreamNode } from './log-forwarding.ts';

export interface InstanceLogsComponents {
  /** Read per request: the daemon's store exists only once it has started. */
  store: () => Store;
  /** This host's driver, once the local controllers have chosen it. */
  driver: () => Driver | undefined;
  /** The p2p node, when this host runs in an overlay. */
  node: () => LogStreamNode | undefined;
  log: Log;
}

export interface InstanceLogsInit {
  hostName: string;
  /** How often a follow checks that the domain still exists (ms). Default 1000. */
  domainCheckMs?: number;
  /** Dial + request + answer of a forwarded log (ms). Default 10 s. */
  forwardTimeoutMs?: number;
  /** Concurrent inbound log streams per connection. Default 32. */
  maxStreams?: number;
}

const DEFAULT_DOMAIN_CHECK_MS = 1_000;

function ref(instance: ServiceInstance): string {
  return instance.metadata.name;
}

/** The host whose domain holds the output: where it runs (status), else where it is bound (spec). */
function hostOf(instance: ServiceInstance): string | undefined {
  return instance.status?.host || instance.spec?.host || undefined;
}

export class InstanceLogs implements LogSource {
  readonly #components: InstanceLogsComponents;
  readonly #init: InstanceLogsInit;
  #stop = new AbortController();
  #node?: LogStreamNode;

  constructor(components: InstanceLogsComponents, init: InstanceLogsInit) {
    this.#components = components;
    this.#init = init;
  }

  async start(): Promise<void> {
    if (this.#node) return;
    this.#stop = new AbortController();
    const node = this.#components.node();
    if (!node) return;
    const { LOGS_PROTOCOL, serveForwardedLogs } = await import('./log-forwarding.ts');
    await node.handle(
      LOGS_PROTOCOL,
      (stream, connection) => {
        serveForwardedLogs(stream, connection, (req, signal) => this.#openLocalRequest(req, signal), {
          signal: this.#stop.signal,
          timeoutMs: this.#init.forwardTimeoutMs,
          log: this.#components.log,
          hostName: this.#init.hostName,
        }).catch((err) =>
          this.#components.log.warn({ err }, `serving a log stream: ${(err as Error).message}`),
        );
      },
      { maxInboundStreams: this.#init.maxStreams ?? 32, maxOutboundStreams: this.#init.maxStreams ?? 32 },
    );
    this.#node = node;
  }

  async stop(): Promise<void> {
    this.#stop.abort(new Error('xenosd is stopping'));
    const node = this.#node;
    this.#node = undefined;
    if (node) await node.unhandle((await import('./log-forwarding.ts')).LOGS_PROTOCOL);
  }

  async logs(
    instance: ServiceInstance,
    options: InstanceLogOptions,
    signal: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array>> {
    const host = hostOf(instance);
    const phase = instance.status?.phase ?? 'Pending';
    if (!host)
      throw errors.badRequest(`instance ${ref(instance)} is not running on any host yet (phase ${phase})`);
    const stop = AbortSignal.any([signal, this.#stop.signal]);
    if (host === this.#init.hostName) return this.#openLocal(instance, options, stop);
    return this.#openRemote(host, instance, options, stop);
  }

  /** A peer asks for the log of an instance it believes runs here. Never forwarded again. */
  async #openLocalRequest(req: LogForwardRequest, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const instance = this.#components.store().get({
      kind: SERVICE_INSTANCE.kind,
      namespace: req.namespace,
      name: req.name,
    });
    if (!instance) throw errors.notFound({ ...SERVICE_INSTANCE, name: req.name });
    const host = hostOf(instance);
    if (host !== this.#init.hostName) {
      throw errors.serviceUnavailable(
        `instance ${req.name} does not run on host ${this.#init.hostName} (host ${this.#init.hostName} sees it on ${host ?? 'no host'}); try again once the hosts agree`,
      );
    }
    return this.#openLocal(instance, { follow: req.follow, tailLines: req.tail }, signal);
  }

  async #openLocal(
    instance: ServiceInstance,
    options: InstanceLogOptions,
    signal: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array>> {
    const driver = this.#components.driver();
    const here = this.#init.hostName;
    if (!driver) throw errors.serviceUnavailable(`host ${here} has no driver running yet; try again shortly`);
    const id =
      (instance.status?.host === here ? instance.status.domainId : undefined) ??
      domainIdFor({
        namespace: instance.metadata.namespace ?? 'default',
        name: instance.metadata.name,
        uid: instance.metadata.uid ?? '',
      });
    if (!(await driver.inspect(id, { signal }))) {
      throw errors.badRequest(
        `instance ${ref(instance)} has no domain on host ${here} yet (phase ${instance.status?.phase ?? 'Pending'}); try again once it runs`,
      );
    }
    return this.#streamDomain(driver, id, options, signal);
  }

  async *#streamDomain(
    driver: Driver,
    id: string,
    options: InstanceLogOptions,
    signal: AbortSignal,
  ): AsyncGenerator<Uint8Array> {
    const done = new AbortController();
    const inner = AbortSignal.any([signal, done.signal]);
    if (options.follow) {
      this.#endWhenGone(driver, id, inner)
        .then(() => done.abort(new Error(`domain ${id} is gone`)))
        .catch((err) => {
          if (!inner.aborted)
            this.#components.log.warn(
              { err, domain: id },
              `watching domain ${id}: ${(err as Error).message}`,
            );
        });
    }
    try {
      for await (const chunk of driver.logs(id, {
        follow: options.follow,
        tail: options.tailLines,
        signal: inner,
      }))
        yield chunk.data;
    } finally {
      done.abort(new Error('the log reader stopped'));
    }
  }

  /** Resolves once the domain no longer exists; rejects when `signal` aborts first. */
  async #endWhenGone(driver: Driver, id: string, signal: AbortSignal): Promise<void> {
    const every = this.#init.domainCheckMs ?? DEFAULT_DOMAIN_CHECK_MS;
    for (;;) {
      await sleep(every, undefined, { signal });
      if (!(await driver.inspect(id, { signal }))) return;
    }
  }

  async #openRemote(
    host: string,
    instance: ServiceInstance,
    options: InstanceLogOptions,
    signal: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array>> {
    const here = this.#init.hostName;
    const node = this.#node;
    if (!node) {
      throw errors.serviceUnavailable(
        `instance ${ref(instance)} runs on host ${host}; log forwarding needs the cluster overlay (this xenosd, host ${here}, runs without --p2p): ask host ${host}'s API instead`,
      );
    }
    const hostObj = this.#components.store().get({ kind: HOST.kind, namespace: '', name: host });
    const peerId = hostObj?.status?.peerId;
    if (!peerId) {
      throw errors.serviceUnavailable(
        `instance ${ref(instance)} runs on host ${host}, which has not published its peer id to host ${here} yet; try again shortly`,
      );
    }
    const request: LogForwardRequest = {
      namespace: instance.metadata.namespace ?? 'default',
      name: instance.metadata.name,
      follow: options.follow,
      ...(options.tailLines !== undefined ? { tail: options.tailLines } : {}),
    };
    const { openForwardedLogs } = await import('./log-forwarding.ts');
    return openForwardedLogs(node, { peerId, host }, request, {
      signal,
      timeoutMs: this.#init.forwardTimeoutMs,
    });
  }
}
