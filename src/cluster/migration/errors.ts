// Named errors of migrations between hosts: the transport's (a target refused or could not be reached)
// and the controller's (a migration that cannot start or failed). Each names the migration and says what
// went wrong; `reason` is the CamelCase word the ServiceMigration's status carries.

import type { RefusalCode } from './protocol.ts';

/** The target refused a stream of a migration (it does not know it, or the source is not who it says). */
export class MigrationRefusedError extends Error {
  readonly code: RefusalCode;
  readonly reason = 'TargetRefused';

  constructor(code: RefusalCode, message: string) {
    super(message);
    this.name = 'MigrationRefusedError';
    this.code = code;
  }
}

/** The target could not be dialled, or its stream failed before it answered. */
export class TargetUnreachableError extends Error {
  readonly reason = 'TargetUnreachable';

  constructor(target: string, why: string) {
    super(`cannot open a migration stream to ${target}: ${why}`);
    this.name = 'TargetUnreachableError';
  }
}

/** A ServiceMigration that cannot be carried out as asked (a missing instance, a target that is not
 *  Ready, another driver): terminal, it is not retried. */
export class MigrationInvalidError extends Error {
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.name = 'MigrationInvalidError';
    this.reason = reason;
  }
}

/** A migration that started and did not finish: the instance runs on its source again. */
export class MigrationFailedError extends Error {
  readonly reason: string;

  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationFailedError';
    this.reason = reason;
  }
}
