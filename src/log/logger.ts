// xenosd's logging: one pino root per process, created once by the daemon (createLogger), and a child per
// component (`logger.forComponent('replication')`, as libp2p's components get theirs), injected into every
// part like any other component. Lines are JSON when stderr is not a terminal (what log collectors read)
// and a compact human line when it is. The level comes from `--log-level` or XENOS_LOG_LEVEL (default info).

import { pino } from 'pino';
import { compactStream } from './compact-stream.ts';

/** One component's log: pino's API (`log.info(msg)`, `log.warn({ err, host }, msg)`, `log.child({...})`). */
export type Log = pino.Logger;

/** Hands out the log of each component. */
export interface Logger {
  forComponent(component: string): Log;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export interface LoggerInit {
  level?: LogLevel;
  /** Fields on every line (xenosd: `{ host }`). */
  base?: Record<string, unknown>;
  /** Where lines go; default stderr (fd 2). */
  fd?: number;
  /** Human lines instead of JSON; default: whether `fd` is a terminal. */
  pretty?: boolean;
}

/** The root logger of a process. Writes synchronously, so the last lines before an exit are not lost. */
export function createLogger(init: LoggerInit = {}): Logger & { root: Log } {
  const fd = init.fd ?? 2;
  const pretty = init.pretty ?? (fd === 2 ? process.stderr.isTTY === true : false);
  const root = pino(
    {
      level: init.level ?? DEFAULT_LOG_LEVEL,
      base: init.base ?? {},
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pretty ? compactStream(fd) : pino.destination({ fd, sync: true }),
  );
  return { root, forComponent: (component) => root.child({ component }) };
}

/** A logger that writes nothing: for parts used outside xenosd (tests, benches, tools) that pass none. */
export const silentLogger: Logger & { root: Log } = (() => {
  const root = pino({ level: 'silent' });
  return { root, forComponent: () => root };
})();
