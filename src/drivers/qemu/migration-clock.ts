// How far the destination host's clock is from the source's, measured over the migration's control
// stream the way NTP does: the source sends its time t0, the destination answers with its time t1, the
// source notes t2 on arrival; offset = t1 − (t0 + t2) / 2, off by at most half the round trip. The
// sample with the shortest round trip is kept. The guest's pause is the destination's RESUME event time
// minus the source's STOP event time (QEMU stamps both with its host's wall clock), so the offset is
// taken out of it.

import type { ControlChannel } from '../migration-control.ts';

/** Wall-clock milliseconds with sub-millisecond precision (what QMP timestamps are compared with). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface ClockOffset {
  /** destination clock − source clock (ms). */
  offsetMs: number;
  /** The round trip of the sample kept: the offset is right to within half of it. */
  rttMs: number;
}

/** The destination's side: answer every ping at once. */
export function answerClockPings(control: ControlChannel): void {
  control.handle('ping', (m) => {
    if (m.type === 'ping') control.send({ type: 'pong', t0: m.t0, t1: wallClockMs() });
  });
}

/** The source's side: `samples` pings one after another; the offset of the fastest. */
export async function measureClockOffset(
  control: ControlChannel,
  samples: number,
  signal?: AbortSignal,
): Promise<ClockOffset> {
  let best: ClockOffset | undefined;
  for (let i = 0; i < samples; i++) {
    const t0 = wallClockMs();
    control.send({ type: 'ping', t0 });
    for (;;) {
      const pong = await control.next(['pong'], 10_000, signal);
      if (pong.t0 !== t0) continue; // a late answer to an earlier ping
      const t2 = wallClockMs();
      const sample = { offsetMs: pong.t1 - (t0 + t2) / 2, rttMs: t2 - t0 };
      if (!best || sample.rttMs < best.rttMs) best = sample;
      break;
    }
  }
  return best ?? { offsetMs: 0, rttMs: Number.POSITIVE_INFINITY };
}
