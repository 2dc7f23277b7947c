// A component log for tests that keeps every line it is given (as pino writes it, parsed), so a test can
// assert on what a part logged: its level, message and fields.

import { pino } from 'pino';
import type { Log } from '../src/log/logger.ts';

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export function captureLog(): { log: Log; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino(
    { level: 'trace', base: {}, formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void lines.push(JSON.parse(line)) },
  );
  return { log, lines };
}
