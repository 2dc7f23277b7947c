// The one way tests wait for a condition: vi.waitFor polls `probe` until it returns a truthy value (a
// probe that throws counts as "not yet"), and on time-out the error names what was awaited, after how long,
// and the last thing the probe said. Never a fixed sleep.

import { vi } from 'vitest';

export interface UntilOptions {
  /** Default 20 s. */
  timeoutMs?: number;
  /** Between two probes; default 20 ms. */
  intervalMs?: number;
}

/** Resolves with `probe`'s first truthy value. `what` (or a function giving it, read on failure) says what
 *  the test waits for. */
export async function until<T>(
  what: string | (() => string),
  probe: () => T | Promise<T>,
  options: UntilOptions | number = {},
): Promise<NonNullable<T>> {
  const { timeoutMs = 20_000, intervalMs = 20 } =
    typeof options === 'number' ? { timeoutMs: options } : options;
  try {
    return await vi.waitFor(
      async () => {
        const v = await probe();
        if (!v) throw new Error(`the probe gave ${String(v)}`);
        return v as NonNullable<T>;
      },
      { timeout: timeoutMs, interval: intervalMs },
    );
  } catch (err) {
    const name = typeof what === 'function' ? what() : what;
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${name} (last: ${(err as Error).message})`, {
      cause: err,
    });
  }
}
