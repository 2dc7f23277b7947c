// A hybrid logical clock (Kulkarni et al. 2014): wall-clock milliseconds plus a logical counter
// plus the writer's id. Every version of a stored object carries one, so that replicas can
// resolve concurrent writes last-writer-wins the same way on every host. Timestamps are totally
// ordered, strictly increasing on one clock even when the wall clock steps back, and move past
// any timestamp received from a peer.
//
// Text form: `<ms, 15 digits>.<counter, 10 digits>.<writer>`. The fixed widths make plain string
// order equal to hlcCompare order, so SQL can compare and range-scan the column directly.
//
// A peer's timestamp is checked before it is merged (`check`): one more than DEFAULT_MAX_DRIFT_MS ahead of
// our wall clock, or with a counter above MAX_REMOTE_COUNTER, is refused and leaves this clock where it
// was. So no peer can push this host's clock further than the allowed skew, nor fill its counter (a
// counter near its 10-digit top would otherwise leave the next local writes nothing to count with).

const MS_DIGITS = 15;
const COUNTER_DIGITS = 10;
const MAX_COUNTER = 10 ** COUNTER_DIGITS - 1;
/** A received timestamp further ahead of our wall clock than this is refused. */
export const DEFAULT_MAX_DRIFT_MS = 60_000;
/**
 * The largest counter taken from a peer. A counter only grows while a clock's milliseconds stand still
 * (its wall clock is behind a timestamp it took, by at most the allowed skew), one per event: 10^8 is a
 * hundred million writes inside one skew window, far beyond any host, and leaves 99 % of the counter's
 * range to the receiver.
 */
export const MAX_REMOTE_COUNTER = 100_000_000;

export interface Hlc {
  /** Wall-clock milliseconds since the epoch (never less than any earlier timestamp's). */
  physical: number;
  /** Orders timestamps within one millisecond. */
  logical: number;
  writer: string;
}

export class HlcFormatError extends Error {
  constructor(text: string, detail: string) {
    super(`invalid hybrid logical clock timestamp "${text}": ${detail}`);
    this.name = 'HlcFormatError';
  }
}

/** A peer's timestamp this clock refuses to merge: too far ahead of our wall clock, or a counter no real
 *  clock reaches. Nothing moved. */
export class ClockDriftError extends Error {
  constructor(remote: string, detail: string) {
    super(`timestamp ${remote} ${detail}`);
    this.name = 'ClockDriftError';
  }
}

export function formatHlc(t: Hlc): string {
  if (t.writer.length === 0) throw new HlcFormatError('', 'writer id is empty');
  return `${String(t.physical).padStart(MS_DIGITS, '0')}.${String(t.logical).padStart(COUNTER_DIGITS, '0')}.${t.writer}`;
}

export function parseHlc(text: string): Hlc {
  const m = /^(\d{15})\.(\d{10})\.(.+)$/s.exec(text);
  if (!m) throw new HlcFormatError(text, 'expected <15-digit ms>.<10-digit counter>.<writer>');
  return { physical: Number(m[1]), logical: Number(m[2]), writer: m[3] };
}

/** Negative if a is earlier than b, 0 if equal, positive if later. Total: ties break on writer. */
export function hlcCompare(a: string, b: string): number {
  const x = parseHlc(a);
  const y = parseHlc(b);
  if (x.physical !== y.physical) return x.physical - y.physical;
  if (x.logical !== y.logical) return x.logical - y.logical;
  return x.writer < y.writer ? -1 : x.writer > y.writer ? 1 : 0;
}

/** The smallest timestamp text at wall time `ms`: every timestamp from `ms` on sorts at or after it. */
export function hlcLowerBound(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(MS_DIGITS, '0');
}

export interface HybridLogicalClockInit {
  /** This host's id; ends every timestamp it issues. */
  writer: string;
  /** The wall clock, in ms. Default Date.now. */
  wallClock?: () => number;
  /** Resume after this timestamp (e.g. the last one persisted), so a restart never goes back. */
  last?: string;
  maxDriftMs?: number;
}

export class HybridLogicalClock {
  readonly writer: string;
  private readonly wallClock: () => number;
  private readonly maxDriftMs: number;
  private physical = 0;
  private logical = 0;

  constructor(init: HybridLogicalClockInit) {
    if (init.writer.length === 0) throw new HlcFormatError('', 'writer id is empty');
    this.writer = init.writer;
    this.wallClock = init.wallClock ?? Date.now;
    this.maxDriftMs = init.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (init.last !== undefined) this.observe(parseHlc(init.last));
  }

  /** A new timestamp, later than every one this clock issued or received. */
  now(): string {
    this.advance(this.wallClock(), 0, 0);
    return this.current();
  }

  /** Throws HlcFormatError or ClockDriftError if `remote` would be refused by receive(); changes nothing.
   *  Check every timestamp of a message before receiving any, so a refused one moves nothing. */
  check(remote: string): Hlc {
    const r = parseHlc(remote);
    const wall = this.wallClock();
    if (r.physical - wall > this.maxDriftMs) {
      throw new ClockDriftError(
        remote,
        `is more than ${this.maxDriftMs} ms ahead of this host's clock (${new Date(wall).toISOString()}); ` +
          'check the clocks (NTP) of both hosts',
      );
    }
    if (r.logical > MAX_REMOTE_COUNTER) {
      throw new ClockDriftError(
        remote,
        `has counter ${r.logical}, above the ${MAX_REMOTE_COUNTER} a peer's clock may reach; the peer is faulty`,
      );
    }
    return r;
  }

  /** Merge a timestamp received from a peer, then issue one later than both. Refuses (see check) a
   *  peer more than maxDriftMs ahead of our wall clock or with an impossible counter, so one bad clock
   *  cannot drag every host forward. */
  receive(remote: string): string {
    const r = this.check(remote);
    this.advance(this.wallClock(), r.physical, r.logical);
    return this.current();
  }

  /** The last timestamp issued, without issuing a new one ('' before the first). */
  peek(): string {
    return this.physical === 0 && this.logical === 0 ? '' : this.current();
  }

  private observe(t: Hlc): void {
    if (t.physical > this.physical || (t.physical === this.physical && t.logical > this.logical)) {
      this.physical = t.physical;
      this.logical = t.logical;
    }
  }

  private advance(wall: number, remotePhysical: number, remoteLogical: number): void {
    const top = Math.max(wall, this.physical, remotePhysical);
    let logical: number;
    if (top === this.physical && top === remotePhysical) logical = Math.max(this.logical, remoteLogical) + 1;
    else if (top === this.physical) logical = this.logical + 1;
    else if (top === remotePhysical) logical = remoteLogical + 1;
    else logical = 0;
    if (logical > MAX_COUNTER) {
      // Ten billion events in one millisecond of a clock that stood still: carry into the milliseconds
      // (still later than everything seen) rather than refuse to write.
      this.physical = top + 1;
      this.logical = 0;
      return;
    }
    this.physical = top;
    this.logical = logical;
  }

  private current(): string {
    return formatHlc({ physical: this.physical, logical: this.logical, writer: this.writer });
  }
}
