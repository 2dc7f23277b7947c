// The notice-board credential of a domain: a bearer token scoped to its own ServiceInstance, so the
// service inside may read its instance, PATCH its status (register endpoints with source `registered`,
// report a `ServiceHealthy` condition) and record events — nothing else (see src/api/auth.ts authorize).
// The token is derived (HMAC-SHA256 of the instance's uid under a host secret kept in the data
// directory), so it is the same on every reconcile and after a coordinator restart: the domain's spec
// hash does not change, and an adopted domain keeps a working token. Deleting the instance revokes it.

import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Principal, TokenAuthenticator } from '../../src/api/auth.ts';
import type { InstanceIdentity } from '../../src/drivers/driver.ts';

/** What the instance controller needs to hand a domain its credential. */
export interface InstanceCredentials {
  /** The token for `instance`, registered with the API so it authenticates. Same value every call. */
  tokenFor(instance: InstanceIdentity): string;
  /** Stop accepting the instance's token. */
  revoke(instance: InstanceIdentity): void;
}

export const INSTANCE_GROUP = 'xenos:instances';

export function instancePrincipal(instance: InstanceIdentity): Principal {
  return {
    name: `instance:${instance.namespace}/${instance.name}/${instance.uid}`,
    groups: [INSTANCE_GROUP],
    scope: { namespace: instance.namespace, instance: instance.name },
  };
}

/** Tokens registered with the daemon's TokenAuthenticator; the secret lives in `<dataDir>/instance-token.key`. */
export class TokenCredentials implements InstanceCredentials {
  private readonly authenticator: TokenAuthenticator;
  private readonly secret: Buffer;

  constructor(components: { authenticator: TokenAuthenticator }, init: { dataDir: string }) {
    this.authenticator = components.authenticator;
    const file = join(init.dataDir, 'instance-token.key');
    if (existsSync(file)) {
      this.secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    } else {
      mkdirSync(dirname(file), { recursive: true });
      this.secret = randomBytes(32);
      writeFileSync(file, this.secret.toString('hex') + '\n', { mode: 0o600 });
    }
  }

  tokenFor(instance: InstanceIdentity): string {
    const token = createHmac('sha256', this.secret)
      .update(`${instance.namespace}/${instance.name}/${instance.uid}`)
      .digest('hex');
    if (!this.authenticator.authenticateToken(token))
      this.authenticator.add(token, instancePrincipal(instance));
    return token;
  }

  revoke(instance: InstanceIdentity): void {
    this.authenticator.revoke(instancePrincipal(instance).name);
  }
}
