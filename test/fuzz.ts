// Settings every property test (test/**/*.property.test.ts) shares. In `npm test`: a fixed seed and a
// few hundred runs per property, each property also stopped after a few seconds, so the whole property
// suite adds well under 20 s. A longer or different run is chosen by environment (README, "Hostile
// input"):
//
//   XENOS_FUZZ_RUNS=10000 XENOS_FUZZ_SEED=$RANDOM npx vitest run property
//
// XENOS_FUZZ_RUNS multiplies nothing: it is the runs per property, and lifts the time cap. A failure
// prints fast-check's seed and path, which XENOS_FUZZ_SEED replays. `bounded` is the "no hang" check:
// one input taking longer than XENOS_FUZZ_HANG_MS (default 3000) fails its property.

import fc from 'fast-check';

const RUNS = process.env.XENOS_FUZZ_RUNS ? Number(process.env.XENOS_FUZZ_RUNS) : undefined;
/** The seed in CI, fixed so that `npm test` is repeatable. */
export const FUZZ_SEED = process.env.XENOS_FUZZ_SEED ? Number(process.env.XENOS_FUZZ_SEED) : 20_260_108;
export const HANG_MS = Number(process.env.XENOS_FUZZ_HANG_MS ?? 3000);
/** The test timeout of a property: vitest's default in CI, none to speak of in a long run. */
export const FUZZ_TEST_TIMEOUT_MS = RUNS === undefined ? 60_000 : 24 * 3_600_000;
/** Per property in CI; a machine under load gets fewer runs, never a failure for being slow. */
const CI_TIME_LIMIT_MS = 4000;

/** fast-check parameters: `ciRuns` runs (or XENOS_FUZZ_RUNS), the shared seed, the CI time cap. */
export function fuzz<T>(ciRuns: number): fc.Parameters<T> {
  return {
    seed: FUZZ_SEED,
    numRuns: RUNS ?? ciRuns,
    plugins: RUNS === undefined ? [fc.interruptAfterTimeLimit(CI_TIME_LIMIT_MS)] : [],
  };
}

/** Runs `f`, failing if one input takes longer than HANG_MS (a hang, not a slow machine: the bound is
 *  a hundred times what any input here takes). */
export function bounded<T>(what: string, f: () => T): T {
  const started = performance.now();
  const check = () => {
    const took = performance.now() - started;
    if (took > HANG_MS)
      throw new Error(`${what} took ${Math.round(took)} ms on one input (limit ${HANG_MS} ms)`);
  };
  let result: T;
  try {
    result = f();
  } catch (err) {
    check();
    throw err;
  }
  check();
  return result;
}

/** Keys and strings an attacker reaches for, mixed into generated documents. */
export const HOSTILE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '<<',
  'length',
  '0',
  '-',
];

/** A plain key: mostly ordinary names, sometimes a hostile one. */
export const keyArb = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-z][a-zA-Z0-9]{0,6}$/) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_KEYS) },
);

/** JSON values with keys from keyArb (depth ≤ maxDepth). */
export function jsonArb(maxDepth = 4): fc.Arbitrary<unknown> {
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', maxDepth },
      fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.boolean(),
        fc.constant(null),
      ),
      fc.array(tie('tree'), { maxLength: 4 }),
      // As JSON.parse builds them: plain objects, never null-prototype ones.
      fc.dictionary(keyArb, tie('tree'), { maxKeys: 4, noNullPrototype: true }),
    ),
  }));
  return tree;
}

/** Whether any own key anywhere in `v` is a prototype key (dictionary() builds them as own data). */
export function hasPrototypeKey(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasPrototypeKey);
  if (v !== null && typeof v === 'object')
    return Object.keys(v).some(
      (k) =>
        ['__proto__', 'constructor', 'prototype'].includes(k) ||
        hasPrototypeKey((v as Record<string, unknown>)[k]),
    );
  return false;
}

/** What Object.prototype holds now, to compare before and after. */
export function prototypeSnapshot(): string {
  return JSON.stringify(Object.getOwnPropertyNames(Object.prototype).sort());
}
