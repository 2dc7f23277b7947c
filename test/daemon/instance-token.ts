// Test and bench helper: an instance-scoped token a xenosd will accept, written into its data dir's
// tokens.json before it starts (the daemon reads that file at start, as it does for the tokens it
// issues to the services it runs). Returns the token.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newToken } from '../../src/api/auth.ts';

export function seedInstanceToken(dataDir: string, namespace: string, instance: string): string {
  const token = newToken();
  const sha256 = createHash('sha256').update(token).digest('hex');
  const principal = { name: `instance:${namespace}/${instance}`, groups: [], scope: { namespace, instance } };
  writeFileSync(
    join(dataDir, 'tokens.json'),
    JSON.stringify({ tokens: [{ sha256, principal, createdAt: new Date().toISOString() }] }),
    { mode: 0o600 },
  );
  return token;
}
