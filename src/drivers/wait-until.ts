// Polling a condition of the outside world (a process gone, a QMP state reached) with a deadline and an
// AbortSignal. The drivers observe things the kernel or a hypervisor does not notify them of.

import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves true once `check` is true, false when `timeoutMs` passes first; rejects if `signal` aborts. */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(options.intervalMs ?? 25, Math.max(1, deadline - Date.now())), undefined, {
      signal: options.signal,
    });
  }
}
