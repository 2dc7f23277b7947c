// Settings shared by the property (fuzz) tests of peer input: a fixed seed and a bounded number of runs and
// time per target in CI; XENOS_FUZZ_RUNS=N (and XENOS_FUZZ_SEED=S to vary or replay a seed) for longer runs.
// Each target reports how many runs it made.

import fc from 'fast-check';
import { expect } from 'vitest';

export const FUZZ_SEED = Number(process.env.XENOS_FUZZ_SEED ?? 20_250_808);
const RUNS = process.env.XENOS_FUZZ_RUNS ? Number(process.env.XENOS_FUZZ_RUNS) : undefined;

/** Checks `property` with the shared seed: `defaultRuns` runs within `budgetMs` unless XENOS_FUZZ_RUNS says
 *  otherwise (then every run, no time budget). Fails with fast-check's report (seed and counterexample). */
export async function fuzz<T>(
  name: string,
  property: fc.IProperty<T> | fc.IAsyncProperty<T>,
  defaultRuns: number,
  budgetMs = 2_000,
): Promise<number> {
  const details = await fc.check(property as fc.IAsyncProperty<T>, {
    seed: FUZZ_SEED,
    numRuns: RUNS ?? defaultRuns,
    ...(RUNS === undefined ? { interruptAfterTimeLimit: budgetMs } : {}),
  });
  expect(details.failed, fc.defaultReportMessage(details) ?? '').toBe(false);
  console.log(`fuzz ${name}: ${details.numRuns} runs (seed ${FUZZ_SEED})`);
  return details.numRuns;
}

/** Arbitrary edits of a JSON value: one node replaced by any JSON, or removed, or the whole value wrapped. */
export function mutated(base: unknown): fc.Arbitrary<unknown> {
  const paths = pathsOf(base);
  return fc.oneof(
    fc.tuple(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 3 })).map(([p, v]) => setAt(base, p, v)),
    fc.constantFrom(...paths).map((p) => setAt(base, p, undefined)),
    fc
      .tuple(fc.constantFrom(...paths), fc.constantFrom('', 'x'.repeat(600), -1, 1e300, null, [], {}, true))
      .map(([p, v]) => setAt(base, p, v)),
  );
}

function pathsOf(v: unknown, at: Array<string | number> = [], out: Array<Array<string | number>> = []) {
  out.push(at);
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) pathsOf(x, [...at, i], out);
  } else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out);
  return out;
}

function setAt(base: unknown, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let node = copy;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = value;
  return copy;
}
