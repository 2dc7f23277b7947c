// The human form of xenosd's log lines, for a terminal: `12:00:01.123 WARN replication: peer refused a row
// reason=signature`, made by pino-pretty as a synchronous stream in this thread (no worker transport).
// pino-pretty is loaded only when a terminal is attached, so a daemon writing JSON does not pay for it.

import { createRequire } from 'node:module';
import type { DestinationStream } from 'pino';
import type { PrettyOptions } from 'pino-pretty';

export function compactStream(fd: number): DestinationStream {
  const require = createRequire(import.meta.url);
  const pretty: (options: PrettyOptions) => DestinationStream = require('pino-pretty');
  return pretty({
    destination: fd,
    sync: true,
    colorize: true,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}{component}: {end}{msg}',
  });
}
