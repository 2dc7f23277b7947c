// What the deployment, failover and drain tests and bench/failover.ts apply: manifests/web's template
// (without its instance), a `web` ServiceDeployment of `replicas` of it on the process driver, at most two
// per host, and standalone instances of it bound to a host, each with a failover policy when asked.

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
  copyEverySeconds?: number;
}): string {
  const copies = opts.copyEverySeconds ? `    copyEverySeconds: ${opts.copyEverySeconds}\n` : '';
  const failover = opts.hostDownSeconds
    ? `  failover:\n    hostDownSeconds: ${opts.hostDownSeconds}\n${copies}`
    : '';
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

/** A standalone instance of the web template bound to `host`, answering with `greeting`. */
export function webInstance(opts: {
  name: string;
  host: string;
  greeting?: string;
  failover?: { hostDownSeconds: number; singleton?: boolean };
}): string {
  const f = opts.failover;
  const failover = f
    ? `  failover:\n    hostDownSeconds: ${f.hostDownSeconds}\n${f.singleton ? '    singleton: true\n' : ''}`
    : '';
  return `apiVersion: xenos.io/v1alpha1
kind: ServiceInstance
metadata:
  name: ${opts.name}
spec:
  templateRef:
    name: web
  parameters:
    greeting: ${opts.greeting ?? `hello from ${opts.name}`}
  host: ${opts.host}
  driver: process
${failover}`;
}
