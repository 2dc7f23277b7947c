// The `web` ServiceDeployment the cluster tests and bench/failover.ts apply: `replicas` of manifests/web's
// template on the process driver, at most two per host, with a failover policy when asked.

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
