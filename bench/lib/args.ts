// Command-line arguments of the benches: `--name value` flags and the positional arguments around them.

/** The value after `--name` on the command line, or `fallback`. */
export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** The arguments that are neither a `--flag` nor the value after one. */
export function positionalArgs(): string[] {
  return process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
}

/** `15s`, `500ms` or `2m` in milliseconds; `bench` names the caller in the error. */
export function durationMs(text: string, bench: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) throw new Error(`${bench}: ${text} is not a duration like 15s or 500ms`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
}
