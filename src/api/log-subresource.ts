// The `log` subresource of a ServiceInstance, shaped like Kubernetes' pods/log:
// GET /apis/xenos.io/v1alpha1/namespaces/{ns}/serviceinstances/{name}/log?follow=true&tailLines=N
// answers text/plain, streamed (chunked) as the domain prints it. Where the output comes from (this
// host's driver, or the host that runs the instance over the p2p overlay) is a `LogSource` the daemon
// gives the ApiServer, so this layer knows neither drivers nor hosts. A follow ends when the client goes
// away, when the source ends (the domain was destroyed) or when the server stops.

import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Log } from '../log/logger.ts';
import type { ServiceInstance } from '../model/service-instance.ts';
import { booleanParam, integerParam } from './http-io.ts';
import { errors } from './status-errors.ts';

export interface InstanceLogOptions {
  /** Keep streaming new output (tail -f). */
  follow: boolean;
  /** Start with only the last N lines (of each of stdout and stderr). */
  tailLines?: number;
}

/** The output of an instance's domain, wherever it runs. `logs` resolves once the stream is open and
 *  rejects with an ApiError when it cannot be (not scheduled, no domain yet, host unreachable), so the
 *  client gets a Status instead of an empty 200. The iterable ends when the output does (or, following,
 *  when the domain is gone); it stops early when `signal` aborts. */
export interface LogSource {
  logs(
    instance: ServiceInstance,
    options: InstanceLogOptions,
    signal: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array | string>>;
}

/** Query parameters of pods/log Xenos has no data for: refused rather than ignored. */
const UNSUPPORTED = ['sinceSeconds', 'sinceTime', 'timestamps', 'previous'];

export interface LogQuery extends InstanceLogOptions {
  /** Stop after this many bytes (pods/log `limitBytes`). */
  limitBytes?: number;
}

export function parseLogQuery(q: URLSearchParams): LogQuery {
  for (const name of UNSUPPORTED) {
    if (q.has(name)) {
      throw errors.badRequest(
        `${name} is not supported: domain output is kept without timestamps; use tailLines to limit it`,
      );
    }
  }
  const container = q.get('container');
  if (container) {
    throw errors.badRequest(
      `container "${container}": a ServiceInstance has one domain; leave the container parameter out`,
    );
  }
  const limitBytes = integerParam(q, 'limitBytes');
  if (limitBytes === 0) throw errors.badRequest('invalid limitBytes "0": must be greater than zero');
  return { follow: booleanParam(q, 'follow'), tailLines: integerParam(q, 'tailLines'), limitBytes };
}

/** Streams the instance's log into `res`. Errors before the first byte are thrown (the server answers
 *  with a Status); after it, the response is cut off (as a broken stream says more than a late 200). */
export async function serveLogs(
  req: IncomingMessage,
  res: ServerResponse,
  components: { instance: ServiceInstance; source: LogSource | undefined; stopSignal: AbortSignal },
  query: LogQuery,
  log: Log,
): Promise<void> {
  const { instance, source, stopSignal } = components;
  if (!source) throw errors.serviceUnavailable('this xenosd serves no instance logs (it runs no driver)');
  req.resume();
  const gone = new AbortController();
  const onClose = () => gone.abort(new Error('the client closed the connection'));
  res.on('close', onClose);
  const signal = AbortSignal.any([gone.signal, stopSignal]);
  try {
    const chunks = await source.logs(instance, query, signal);
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-cache, private',
      'X-Content-Type-Options': 'nosniff',
    });
    // The client sees the 200 at once, even when a follow has nothing to say yet.
    res.flushHeaders();
    let sent = 0;
    const limit = query.limitBytes;
    for await (const chunk of chunks) {
      if (signal.aborted) break;
      let buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      if (limit !== undefined && sent + buf.byteLength > limit) buf = buf.subarray(0, limit - sent);
      sent += buf.byteLength;
      if (!res.write(buf)) await once(res, 'drain', { signal });
      if (limit !== undefined && sent >= limit) break;
    }
    if (!res.destroyed) res.end();
  } catch (err) {
    if (!res.headersSent) throw err;
    if (signal.aborted) {
      // The client left or the server stops: end what can still be ended.
      if (!res.destroyed) res.end();
      return;
    }
    const name = `${instance.metadata.namespace}/${instance.metadata.name}`;
    log.warn({ err, instance: name }, `log stream of instance ${name} broke: ${(err as Error).message}`);
    res.destroy();
  } finally {
    res.off('close', onClose);
  }
}
