// Named errors of the hypervisor drivers. Each message says what went wrong, for which domain, and what
// to do; `code` is a stable reason a controller can put in a condition.

export class DriverError extends Error {
  readonly code: string;
  readonly domainId?: string;

  constructor(code: string, message: string, domainId?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DriverError';
    this.code = code;
    this.domainId = domainId;
  }
}

/** The driver was asked for by name but is not part of this build or cannot run on this host. */
export class DriverUnavailableError extends DriverError {
  constructor(driver: string, reason: string) {
    super('DriverUnavailable', `driver "${driver}" cannot be used on this host: ${reason}`);
    this.name = 'DriverUnavailableError';
  }
}

/** The domain spec can never work as written (terminal: mark the instance Stalled, do not retry). */
export class InvalidDomainSpecError extends DriverError {
  readonly field?: string;

  constructor(domainId: string, message: string, field?: string) {
    super('InvalidDomainSpec', `domain ${domainId}: ${field ? `${field}: ` : ''}${message}`, domainId);
    this.name = 'InvalidDomainSpecError';
    this.field = field;
  }
}

export class DomainNotFoundError extends DriverError {
  constructor(domainId: string, where: string) {
    super('DomainNotFound', `domain ${domainId} does not exist on this host (looked in ${where})`, domainId);
    this.name = 'DomainNotFoundError';
  }
}

/** Preparing the domain's files from the image failed (copy, extract, disk creation). */
export class PrepareError extends DriverError {
  constructor(domainId: string, message: string, options?: { cause?: unknown }) {
    super('PrepareFailed', `domain ${domainId}: preparing its files failed: ${message}`, domainId, options);
    this.name = 'PrepareError';
  }
}

export class StartError extends DriverError {
  constructor(domainId: string, message: string, options?: { cause?: unknown }) {
    super('StartFailed', `domain ${domainId}: start failed: ${message}`, domainId, options);
    this.name = 'StartError';
  }
}

/** No free host port could be allocated for a domain port. */
export class PortAllocationError extends DriverError {
  constructor(domainId: string, portName: string, message: string) {
    super('PortAllocationFailed', `domain ${domainId}: port "${portName}": ${message}`, domainId);
    this.name = 'PortAllocationError';
  }
}

export class MigrationError extends DriverError {
  constructor(domainId: string, message: string, options?: { cause?: unknown }) {
    super('MigrationFailed', `domain ${domainId}: migration failed: ${message}`, domainId, options);
    this.name = 'MigrationError';
  }
}

/** A `${...}` reference in a command, argument or env value names nothing known. */
export class ParameterReferenceError extends DriverError {
  readonly field: string;

  constructor(field: string, reference: string, known: string[]) {
    super(
      'InvalidParameterReference',
      `${field}: \${${reference}} refers to nothing; known: ${known.length ? known.map((k) => `\${${k}}`).join(', ') : '(none)'}`,
    );
    this.name = 'ParameterReferenceError';
    this.field = field;
  }
}

/** A parameter value is missing or does not match its pattern. */
export class ParameterValueError extends DriverError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('InvalidParameterValue', `${field}: ${message}`);
    this.name = 'ParameterValueError';
    this.field = field;
  }
}

/** The domain sandbox cannot be set up on this host (bubblewrap missing or failing): domains do not start. */
export class SandboxUnavailableError extends DriverError {
  constructor(domainId: string, reason: string) {
    super(
      'SandboxUnavailable',
      `domain ${domainId}: not started: the domain sandbox is unavailable on this host: ${reason}. ` +
        'Run `npm run setup` (it installs bubblewrap) or `apt-get install bubblewrap`; the domain starts at the next retry. ' +
        '(xenosd --unsafe-no-sandbox runs domains unsandboxed, with access to the data dir: never with code you do not trust.)',
      domainId,
    );
    this.name = 'SandboxUnavailableError';
  }
}

/** No uid of the configured range is free for a new sandboxed domain. */
export class UidRangeExhaustedError extends DriverError {
  constructor(domainId: string, range: string) {
    super(
      'UidRangeExhausted',
      `domain ${domainId}: every uid of the domain uid range ${range} is held by a domain on this machine; destroy some or widen the range (xenosd --domain-uids)`,
      domainId,
    );
    this.name = 'UidRangeExhaustedError';
  }
}

/** A disk image cannot back a copy-on-write overlay (unknown format, its own backing file, qemu-img failed). */
export class DiskImageError extends DriverError {
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('DiskImageUnusable', `disk image ${path}: ${message}`, undefined, options);
    this.name = 'DiskImageError';
  }
}

/** Why running `tool` failed, in one line for people. */
export function execFailure(err: unknown, tool: string): string {
  const e = err as NodeJS.ErrnoException & { stderr?: string };
  if (e.code === 'ENOENT') return `${tool} is not installed (not on PATH)`;
  const detail = (e.stderr || e.message || String(err)).trim().split('\n')[0];
  return `${tool} failed: ${detail}`;
}
