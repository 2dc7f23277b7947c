// A progress display for long transfers (image pulls and uploads), written to stderr so stdout stays
// for results. On a terminal: one line redrawn in place — a bar, the percentage, bytes done of the total,
// the rate and, for a pull, how many peers are sending; elsewhere (a log, CI): a plain line every few
// seconds and at the end, never control characters. The rate is measured over the last few samples, from
// the times the samples carry (a status' updatedAt) or this clock.

export interface ProgressSample {
  /** Bytes done. */
  bytes: number;
  /** Bytes in all (0 or less: unknown). */
  size: number;
  /** Peers sending chunks now (pulls). */
  holders?: number;
  /** When the sample was taken, ms since the epoch. Default: now. */
  at?: number;
}

export interface ProgressOutput {
  write(text: string): void;
  /** Whether the output is a terminal (redraw in place) or not (plain lines). */
  tty: boolean;
  /** The terminal's width; default 80. */
  columns?: number;
  now?: () => number;
}

export interface ProgressInit {
  /** What is being moved: `pulling sha256:0a1b2c3d4e5f on host-2`. */
  label: string;
  /** Without a terminal: at most one line per this many ms (default 5 s). */
  plainEveryMs?: number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = Math.max(0, n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[u]}`;
}

/** The one line of a sample: `label [#####.....]  45%  115.2 MiB/256.0 MiB  11.8 MiB/s  from 5 peers`. The
 *  bar shrinks to fit `columns`, and goes when even a short one does not fit. */
export function renderLine(label: string, s: ProgressSample, rate: number | undefined, columns = 80): string {
  const known = s.size > 0;
  const pct = known ? Math.min(100, Math.floor((s.bytes * 100) / s.size)) : undefined;
  const parts = [
    pct === undefined ? '' : `${String(pct).padStart(3)}%`,
    known ? `${formatBytes(s.bytes)}/${formatBytes(s.size)}` : formatBytes(s.bytes),
    rate === undefined ? '' : `${formatBytes(rate)}/s`,
    s.holders === undefined ? '' : `from ${s.holders} peer${s.holders === 1 ? '' : 's'}`,
  ].filter(Boolean);
  const tail = parts.join('  ');
  const room = columns - label.length - tail.length - 5;
  if (pct === undefined || room < 10) return `${label}  ${tail}`;
  const width = Math.min(40, room);
  const full = Math.floor((width * pct) / 100);
  return `${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}] ${tail}`;
}

/** How many recent samples the rate is measured over. */
const RATE_WINDOW = 6;

export class ProgressBar {
  readonly #out: ProgressOutput;
  readonly #label: string;
  readonly #plainEveryMs: number;
  readonly #now: () => number;
  readonly #samples: { bytes: number; at: number }[] = [];
  #last?: ProgressSample;
  #lastPlainAt = Number.NEGATIVE_INFINITY;
  #drawn = false;
  /** Plain mode: the last sample has not been printed yet. */
  #unprinted = false;

  constructor(out: ProgressOutput, init: ProgressInit) {
    this.#out = out;
    this.#label = init.label;
    this.#plainEveryMs = init.plainEveryMs ?? 5000;
    this.#now = out.now ?? Date.now;
  }

  /** Bytes per second over the last samples; undefined until two samples apart in time. */
  rate(): number | undefined {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at <= first.at) return undefined;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }

  update(sample: ProgressSample): void {
    const at = sample.at ?? this.#now();
    const prev = this.#samples.at(-1);
    if (prev && at <= prev.at) prev.bytes = sample.bytes;
    else this.#samples.push({ bytes: sample.bytes, at });
    if (prev && sample.bytes < prev.bytes) this.#samples.splice(0, this.#samples.length - 1); // restarted
    while (this.#samples.length > RATE_WINDOW) this.#samples.shift();
    this.#last = sample;
    if (this.#out.tty) {
      this.#draw();
      return;
    }
    const now = this.#now();
    this.#unprinted = now - this.#lastPlainAt < this.#plainEveryMs;
    if (this.#unprinted) return;
    this.#lastPlainAt = now;
    this.#out.write(`${this.#line()}\n`);
  }

  /** Ends the display: the last state on its own line, then `message` (if any) on the next. */
  done(message?: string): void {
    if (this.#out.tty) {
      if (this.#drawn) this.#draw();
      if (this.#drawn) this.#out.write('\n');
    } else if (this.#unprinted) {
      this.#out.write(`${this.#line()}\n`);
      this.#unprinted = false;
    }
    this.#drawn = false;
    if (message) this.#out.write(`${message}\n`);
  }

  #line(): string {
    return renderLine(this.#label, this.#last ?? { bytes: 0, size: 0 }, this.rate(), this.#out.columns ?? 80);
  }

  #draw(): void {
    // Carriage return, the line, erase to the end of the line (a shorter line leaves no leftovers).
    this.#out.write(`\r${this.#line()}\x1b[K`);
    this.#drawn = true;
  }
}
