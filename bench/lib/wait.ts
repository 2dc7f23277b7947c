// Waiting for a condition in a benchmark: poll until it holds, or fail naming what never happened.
// Benchmarks wait for states, never for fixed times.

/** Polls `cond` every `everyMs` until it returns something truthy (which it resolves with); throws
 *  "bench: timed out after N ms waiting for WHAT" after `timeoutMs`. Errors thrown by `cond` count as
 *  "not yet" and the last one is named in the timeout. */
export async function until<T>(
  cond: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  everyMs = 20,
): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<Awaited<T>>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : '';
      throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
