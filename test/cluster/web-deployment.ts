// What the deployment and failover tests and bench/failover.ts apply: manifests/web's template (without its
// instance), and a `web` ServiceDeployment of `replicas` of it on the process driver, at most two per host,
// with a failover policy when asked.

import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Copies manifests/web into `dir`, leaving out its instance: the template and its image only. */
export function copyWebTemplate(dir: string): void {
  cpSync(new URL('../../manifests/web/', import.meta.url).pathname, dir, { recursive: true });
  rmSync(join(dir, 'instance.yaml'));
}

export function webDeployment(opts: {
  replicas: number;
  greeting?: string;
  hostDownSeconds?: number;
}): string {
  const failover = opts.hostDownSeconds ? `  failover:\n    hostDownSeconds: ${opts.hostDownSeconds}\n` : '';
  return `apiVersion: xenos.io/v1alpha1
kind: ServiceDeployment
metadata:
  name: web
spec:
  replicas: ${opts.replicas}
  template:
    spec:
      templateRef:
        name: web
      parameters:
        greeting: ${opts.greeting ?? 'hello from a replica'}
      driver: process
  spread:
    maxPerHost: 2
${failover}`;
}
