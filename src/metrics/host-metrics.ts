// One host's Prometheus metrics (prom-client), served at /metrics. A HostMetrics holds its own registry, so
// two daemons in one process (the tests) never mix their figures. Parts report through the narrow
// interfaces below (ReconcileMetrics, ApiMetrics, DhtMetrics), so a part knows nothing of prom-client and
// works without metrics; figures a part already keeps (replication rows, image bytes, refusals) are read
// at scrape time with `counterFrom`/`gaugeFrom`. Names follow Prometheus conventions: `xenos_` prefix,
// the unit in the name (`_seconds`, `_bytes`), `_total` for counters, label values from bounded sets only
// (controller names, verbs, status codes, phases, reasons), never object names.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { RefusalCounter } from './refusals.ts';

export type ReconcileOutcome = 'success' | 'requeue' | 'error' | 'terminal';

/** What the controller runner reports (src/reconcile/controller.ts). */
export interface ReconcileMetrics {
  /** One reconcile of `controller` ended with `outcome` after `seconds`. */
  reconciled(controller: string, outcome: ReconcileOutcome, seconds: number): void;
  /** Reports `depth()` as the controller's queue depth at each scrape, until the returned function runs. */
  watchQueue(controller: string, depth: () => number): () => void;
}

/** What the API server reports: one request, once its answer ended (watches count, without latency). */
export interface ApiMetrics {
  request(labels: { verb: string; resource: string; code: number }, seconds: number): void;
}

/** What the DHT wrapper reports: one query (put, get, provide, findProviders, ...) and how it ended. */
export interface DhtMetrics {
  query(op: string, outcome: 'ok' | 'error', seconds: number): void;
}

type Labels = Record<string, string | number>;
/** A figure read at scrape time: one value, or one per label set. */
export type Reading = number | Array<[Labels, number]>;

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const PAUSE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];

export class HostMetrics implements ReconcileMetrics, ApiMetrics, DhtMetrics {
  readonly registry = new Registry();
  readonly #reconciles: Counter<'controller' | 'result'>;
  readonly #reconcileErrors: Counter<'controller'>;
  readonly #reconcileSeconds: Histogram<'controller'>;
  readonly #queues = new Map<string, () => number>();
  readonly #requests: Counter<'verb' | 'resource' | 'code'>;
  readonly #requestSeconds: Histogram<'verb' | 'resource'>;
  readonly #dhtQueries: Counter<'op' | 'result'>;
  readonly #dhtSeconds: Histogram<'op'>;
  readonly #migrations: Counter<'mode' | 'result'>;
  readonly #migrationPause: Histogram<'mode'>;

  constructor(init: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    // process_* and nodejs_* (memory, CPU, event loop lag, GC), as every Node exporter names them. The
    // event loop lag histogram samples with a timer that wakes the loop each time: prom-client's default,
    // every 10 ms, woke an idle xenosd 200 times a second, its largest idle cost (strace;
    // bench/host-footprint.ts), and every 100 ms was still half the wake-ups of an idle p2p host. Once
    // a second: a stall of a second or more is always seen, a shorter one in proportion to its length
    // (a 200 ms stall in one sample of five); nodejs_eventloop_lag_seconds, measured at each scrape, is
    // unaffected.
    if (init.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
    }
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    const histogram = <L extends string>(
      name: string,
      help: string,
      labelNames: L[],
      buckets = LATENCY_BUCKETS,
    ) => new Histogram<L>({ name, help, labelNames, buckets, registers });
    this.#reconciles = counter(
      'xenos_controller_reconciles_total',
      'Reconciles by controller and result (success, requeue, error, terminal).',
      ['controller', 'result'],
    );
    this.#reconcileErrors = counter(
      'xenos_controller_reconcile_errors_total',
      'Reconciles that failed (retried with backoff, or terminal), by controller.',
      ['controller'],
    );
    this.#reconcileSeconds = histogram(
      'xenos_controller_reconcile_duration_seconds',
      'How long one reconcile took, by controller.',
      ['controller'],
    );
    const queues = this.#queues;
    new Gauge({
      name: 'xenos_workqueue_depth',
      help: 'Keys waiting in a controller work queue.',
      labelNames: ['controller'],
      registers,
      collect() {
        this.reset();
        for (const [controller, depth] of queues) this.set({ controller }, depth());
      },
    });
    this.#requests = counter(
      'xenos_api_requests_total',
      'API requests by verb, resource and HTTP status code.',
      ['verb', 'resource', 'code'],
    );
    this.#requestSeconds = histogram(
      'xenos_api_request_duration_seconds',
      'How long an API request took until its answer ended, by verb and resource (watches excluded).',
      ['verb', 'resource'],
    );
    this.#dhtQueries = counter(
      'xenos_dht_queries_total',
      'DHT queries this host made, by operation and result.',
      ['op', 'result'],
    );
    this.#dhtSeconds = histogram(
      'xenos_dht_query_duration_seconds',
      'How long a DHT query took, by operation.',
      ['op'],
    );
    this.#migrations = counter(
      'xenos_migrations_total',
      'Migrations this host was the source of, by mode (Live, Cold) and result (Succeeded, Failed).',
      ['mode', 'result'],
    );
    this.#migrationPause = histogram(
      'xenos_migration_pause_seconds',
      'How long a migrated instance was paused (its downtime), by mode.',
      ['mode'],
      PAUSE_BUCKETS,
    );
  }

  reconciled(controller: string, outcome: ReconcileOutcome, seconds: number): void {
    this.#reconciles.inc({ controller, result: outcome });
    if (outcome === 'error' || outcome === 'terminal') this.#reconcileErrors.inc({ controller });
    this.#reconcileSeconds.observe({ controller }, seconds);
  }

  watchQueue(controller: string, depth: () => number): () => void {
    this.#queues.set(controller, depth);
    return () => {
      if (this.#queues.get(controller) === depth) this.#queues.delete(controller);
    };
  }

  request(labels: { verb: string; resource: string; code: number }, seconds: number): void {
    const { verb, resource, code } = labels;
    this.#requests.inc({ verb, resource, code });
    if (verb !== 'watch') this.#requestSeconds.observe({ verb, resource }, seconds);
  }

  query(op: string, outcome: 'ok' | 'error', seconds: number): void {
    this.#dhtQueries.inc({ op, result: outcome });
    this.#dhtSeconds.observe({ op }, seconds);
  }

  /** One migration this host was the source of ended; `pauseSeconds` when the report has one. */
  migrated(mode: string, result: 'Succeeded' | 'Failed', pauseSeconds: number | undefined): void {
    this.#migrations.inc({ mode, result });
    if (pauseSeconds !== undefined) this.#migrationPause.observe({ mode }, pauseSeconds);
  }

  /** A counter whose value a part keeps (read at each scrape; it must only grow). */
  counterFrom(name: string, help: string, read: () => Reading, labelNames: string[] = []): void {
    this.registry.removeSingleMetric(name);
    new Counter({ name, help, labelNames, registers: [this.registry], collect: collectFrom(read) });
  }

  /** A gauge read from a part at each scrape. */
  gaugeFrom(name: string, help: string, read: () => Reading, labelNames: string[] = []): void {
    this.registry.removeSingleMetric(name);
    new Gauge({ name, help, labelNames, registers: [this.registry], collect: collectFrom(read) });
  }

  /** A part's refusal counter, by reason, read at each scrape: registered when the part is made (again
   *  when a restarted part makes a new one: the newest counter is the one read). */
  refusals(counter: RefusalCounter<string>): void {
    this.registry.removeSingleMetric(counter.name);
    this.counterFrom(
      counter.name,
      counter.help,
      () => Object.entries(counter.snapshot()).map(([reason, n]) => [{ reason }, n as number]),
      ['reason'],
    );
  }

  /** The text a scrape gets, and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** A metric's scrape-time collect: what `read` says now, from zero. */
function collectFrom(read: () => Reading) {
  return function (this: { reset(): void; inc(labels: Labels, value: number): void }) {
    this.reset();
    const r = read();
    for (const [labels, v] of typeof r === 'number' ? [[{}, r] as [Labels, number]] : r) this.inc(labels, v);
  };
}
