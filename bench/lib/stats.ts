// Percentiles and summaries of measured samples, shared by every benchmark. The nearest-rank rule
// (the value at floor(p% of n), clamped to the last) is the one the first benches used, kept so that
// their figures stay comparable across commits.

/** The p-th percentile (0–100) of values sorted ascending. NaN for no values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A sorted copy (ascending). */
export function sortedCopy(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** n, min, p50, p99, max and mean of `values` (in any order). */
export function summarise(values: readonly number[]): Summary {
  const s = sortedCopy(values);
  return {
    n: s.length,
    min: s[0] ?? Number.NaN,
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN,
  };
}
