// A benchmark's figures: printed next to the bound they are held against with the ratio, and, when
// bench/run.ts runs the bench, also appended as one JSON line to the file named by XENOS_BENCH_RESULTS,
// from which the runner builds its summary table. A figure without a bound is reported as measured.

import { appendFileSync } from 'node:fs';

/** Environment variable naming the JSON-lines file a runner collects figures from. */
export const RESULTS_ENV = 'XENOS_BENCH_RESULTS';

export interface Figure {
  /** The bench that measured it, e.g. "instances-ready". */
  bench: string;
  /** What it is, e.g. "apply → Ready p99". */
  name: string;
  value: number;
  /** "ms", "MB", "objects/s", "% of a core", ... */
  unit: string;
  /** The bound it is held against, if any. */
  bound?: number;
  /** "max": the value must be <= bound (a latency); "min": >= bound (a rate). Default "max". */
  boundKind?: 'max' | 'min';
  /** Anything a reader needs to judge the figure (load, sample size, ...). */
  note?: string;
}

/** value / bound (for a "max" bound, <= 1 meets it; for a "min" bound, >= 1 meets it). */
export function ratio(f: Figure): number | undefined {
  return f.bound === undefined ? undefined : f.value / f.bound;
}

/** Whether the figure meets its bound; undefined when it has none. */
export function meetsBound(f: Figure): boolean | undefined {
  if (f.bound === undefined) return undefined;
  return (f.boundKind ?? 'max') === 'max' ? f.value <= f.bound : f.value >= f.bound;
}

/** "within" / "OVER" for a "max" bound, "met" / "NOT met" for a "min" bound, "" without a bound. */
export function verdict(f: Figure): string {
  const ok = meetsBound(f);
  if (ok === undefined) return '';
  return (f.boundKind ?? 'max') === 'max' ? (ok ? 'within' : 'OVER') : ok ? 'met' : 'NOT met';
}

/** A number with a sensible number of decimals for a table. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2);
}

/** "bound <= 1000 ms: within (ratio 0.42)", or "no bound"; a bound of 0 (a count of failures) has no ratio. */
export function boundText(f: Figure): string {
  if (f.bound === undefined) return 'no bound';
  const kind = f.boundKind ?? 'max';
  const r = ratio(f)!;
  return `bound ${kind === 'max' ? '<=' : '>='} ${f.bound} ${f.unit}: ${verdict(f)}${Number.isFinite(r) ? ` (ratio ${r.toFixed(2)})` : ''}`;
}

/** Appends the figure to the runner's results file, if a runner asked for one. Prints nothing. */
export function recordFigure(f: Figure): void {
  const file = process.env[RESULTS_ENV];
  if (file) appendFileSync(file, `${JSON.stringify(f)}\n`);
}

/** Prints "  NAME  VALUE UNIT   bound ...: within (ratio R)" and records the figure. */
export function printFigure(f: Figure, nameWidth = 28): void {
  const value = `${formatValue(f.value)} ${f.unit}`;
  console.log(
    `  ${f.name.padEnd(nameWidth)} ${value.padStart(14)}   ${boundText(f)}${f.note ? `   (${f.note})` : ''}`,
  );
  recordFigure(f);
}
