// Named errors of the QEMU driver's QMP client: a command QEMU refused (with QMP's own error class and
// description), a monitor that went away, and a command or connection that took too long.

import { DriverError } from '../errors.ts';

/** QEMU answered a command with `{"error": {"class", "desc"}}`. */
export class QmpCommandError extends DriverError {
  /** QMP's error class: `GenericError`, `CommandNotFound`, `DeviceNotFound`, ... */
  readonly qmpClass: string;
  /** QMP's human description, as QEMU wrote it. */
  readonly desc: string;
  readonly command: string;

  constructor(command: string, qmpClass: string, desc: string, domainId?: string) {
    super(
      'QmpCommandFailed',
      `${domainId ? `domain ${domainId}: ` : ''}QEMU refused QMP command ${command}: ${desc} (${qmpClass})`,
      domainId,
    );
    this.name = 'QmpCommandError';
    this.qmpClass = qmpClass;
    this.desc = desc;
    this.command = command;
  }
}

/** The QMP connection could not be made, or closed (QEMU exited or the socket broke). */
export class QmpConnectionError extends DriverError {
  constructor(socketPath: string, message: string, domainId?: string, options?: { cause?: unknown }) {
    super(
      'QmpUnavailable',
      `${domainId ? `domain ${domainId}: ` : ''}QMP monitor ${socketPath}: ${message}`,
      domainId,
      options,
    );
    this.name = 'QmpConnectionError';
  }
}

/** A QMP command (or the connection's greeting) got no answer in time. */
export class QmpTimeoutError extends DriverError {
  readonly command: string;

  constructor(command: string, timeoutMs: number, domainId?: string) {
    super(
      'QmpTimeout',
      `${domainId ? `domain ${domainId}: ` : ''}QMP command ${command} got no answer in ${timeoutMs} ms; QEMU may be hung (stop the domain to force it off)`,
      domainId,
    );
    this.name = 'QmpTimeoutError';
    this.command = command;
  }
}
