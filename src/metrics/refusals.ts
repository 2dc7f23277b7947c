// Counters of input refused from peers (rows, messages, DHT records, connections), by reason, named as
// Prometheus counters are (`xenos_<subsystem>_<what>_refused_total{reason="..."}`) so that the /metrics
// endpoint of a later issue exposes them unchanged. Each refusal is also logged, at most one line per
// reason per `logIntervalMs`: a hostile peer sending a million bad rows costs a million increments, not a
// million log lines. The line that is written says how many were left out since the last one.

import type { Log } from '../log/logger.ts';

export interface RefusalCounterInit<R extends string> {
  /** The counter's metric name, e.g. `xenos_replication_rows_refused_total`. */
  name: string;
  /** One line for the metric's HELP. */
  help: string;
  /** Every reason this counter takes (each starts at 0, so a scrape shows all of them). */
  reasons: readonly R[];
  /** Where the rate-limited lines go (a warning each); nothing is logged without it. */
  log?: Log;
  /** At most one line per reason per this long (ms). Default 10 s. */
  logIntervalMs?: number;
  now?: () => number;
}

export class RefusalCounter<R extends string> {
  readonly name: string;
  readonly help: string;
  readonly #counts = new Map<R, number>();
  readonly #lastLine = new Map<R, { at: number; count: number }>();
  readonly #log: Log | undefined;
  readonly #interval: number;
  readonly #now: () => number;

  constructor(init: RefusalCounterInit<R>) {
    this.name = init.name;
    this.help = init.help;
    for (const r of init.reasons) this.#counts.set(r, 0);
    this.#log = init.log;
    this.#interval = init.logIntervalMs ?? 10_000;
    this.#now = init.now ?? Date.now;
  }

  /** Counts one refusal and logs it unless a line for this reason was written within the interval. */
  count(reason: R, detail: string): void {
    const n = (this.#counts.get(reason) ?? 0) + 1;
    this.#counts.set(reason, n);
    if (!this.#log) return;
    const now = this.#now();
    const last = this.#lastLine.get(reason);
    if (last && now - last.at < this.#interval) return;
    const skipped = last ? n - last.count - 1 : 0;
    this.#lastLine.set(reason, { at: now, count: n });
    this.#log.warn(
      { metric: this.name, reason, count: n, skipped },
      `refused (${this.name}{reason="${reason}"} = ${n}` +
        `${skipped > 0 ? `; ${skipped} more since the last line` : ''}): ${detail}`,
    );
  }

  get(reason: R): number {
    return this.#counts.get(reason) ?? 0;
  }

  /** Every refusal counted, all reasons together. */
  get total(): number {
    let n = 0;
    for (const v of this.#counts.values()) n += v;
    return n;
  }

  /** The counts by reason (a copy). */
  snapshot(): Record<R, number> {
    return Object.fromEntries(this.#counts) as Record<R, number>;
  }

  /** The counter in the Prometheus text exposition format. */
  exposition(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [reason, n] of this.#counts) lines.push(`${this.name}{reason="${reason}"} ${n}`);
    return `${lines.join('\n')}\n`;
  }
}
