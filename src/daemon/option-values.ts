// The values of xenosd's flags that take more than a type check, each parsed or checked on its own and
// reported as one line: durations, HOST:PORT, --controllers, --log-level (or XENOS_LOG_LEVEL), --watch.
// options.ts holds the table of flags that uses them.

import { basename, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { DEFAULT_LOG_LEVEL, isLogLevel, LOG_LEVELS, type LogLevel } from '../log/logger.ts';

/** Loopback only by default: the API is plain HTTP unless --tls-cert/--tls-key are given. */
export const DEFAULT_API = '127.0.0.1:7443';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `15s`, `500ms`, `2m`, `1h` or a bare number of seconds → milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration like 15s, 500ms, 2m or 1h, got "${value}"`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']);
}

/** Commander's accumulator for a repeatable flag. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A mistake in the command line, for one-line reporting. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`expected HOST:PORT (e.g. ${DEFAULT_API}), got "${value}"`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) throw new InvalidArgumentError(`port ${port} is out of range (0-65535)`);
  return { host: host || '127.0.0.1', port };
}

export const OPTIONAL_CONTROLLERS = ['servicedeployment'] as const;
export type OptionalController = (typeof OPTIONAL_CONTROLLERS)[number];

/** `--controllers`: '*' or nothing runs them all; a list of names runs those; `-NAME` leaves one out. */
export function disabledControllers(list: string): OptionalController[] {
  const entries = list
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const known = (name: string): OptionalController => {
    if (!(OPTIONAL_CONTROLLERS as readonly string[]).includes(name))
      throw new UsageError(
        `--controllers: unknown controller "${name}" (known: ${OPTIONAL_CONTROLLERS.join(', ')})`,
      );
    return name as OptionalController;
  };
  const all = entries.length === 0 || entries.includes('*');
  const named = new Set(entries.filter((e) => e !== '*' && !e.startsWith('-')).map(known));
  const off = new Set(entries.filter((e) => e.startsWith('-')).map((e) => known(e.slice(1))));
  return OPTIONAL_CONTROLLERS.filter((c) => off.has(c) || (!all && !named.has(c)));
}

/** `--log-level`, else XENOS_LOG_LEVEL, else the default. */
export function logLevel(flag: string | undefined): LogLevel {
  const [where, value] =
    flag !== undefined ? ['--log-level', flag] : ['XENOS_LOG_LEVEL', process.env.XENOS_LOG_LEVEL];
  if (value === undefined || value === '') return DEFAULT_LOG_LEVEL;
  if (!isLogLevel(value))
    throw new UsageError(`${where} must be one of ${LOG_LEVELS.join(', ')}; got "${value}"`);
  return value;
}

/** `--watch [NAME=]DIR`: each directory with its source name (a DNS label, unique on this host). */
export function watchedDirs(values: string[]): { name: string; dir: string }[] {
  const out: { name: string; dir: string }[] = [];
  for (const v of values) {
    const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(.+)$/.exec(v);
    const dir = resolve(m ? m[3] : v);
    const name = m ? m[1] : sourceNameOf(dir);
    if (!name || name.length > 63)
      throw new UsageError(
        `--watch "${v}": cannot make a source name of the directory's name; give one as NAME=DIR (lower-case letters, digits and -)`,
      );
    if (out.some((w) => w.name === name))
      throw new UsageError(`--watch "${v}": the source name "${name}" is given twice; name them as NAME=DIR`);
    out.push({ name, dir });
  }
  return out;
}

/** A directory's name as a DNS label: lower case, anything else a dash. */
function sourceNameOf(dir: string): string {
  return basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
