// The example web service (manifests/web) as the benches use it on a real xenosd: its ServiceTemplate
// with the image path made absolute (and optionally another health-check period), instances of it,
// the conditions to wait for, and a clean-up that deletes instances and waits until their domain
// processes are gone (process-driver domains outlive xenosd by design, so they must go first).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import type { XenosClient } from '../../src/client/client.ts';
import { SERVICE_INSTANCE, SERVICE_TEMPLATE } from '../../src/model/kinds.ts';
import type { Condition } from '../../src/model/object.ts';
import type { ServiceInstance } from '../../src/model/service-instance.ts';
import type { ServiceTemplate } from '../../src/model/service-template.ts';
import { domainPids } from './proc-footprint.ts';
import { until } from './wait.ts';

// The kinds as the client addresses them; re-exported for the benches.
export { SERVICE_INSTANCE, SERVICE_TEMPLATE };

const WEB_DIR = fileURLToPath(new URL('../../manifests/web/', import.meta.url));

/** manifests/web/template.yaml in `namespace`, its image path absolute; `periodSeconds` overrides the
 *  health check's period (the manifest says 5 s). */
export function webTemplate(namespace: string, opts: { periodSeconds?: number } = {}): ServiceTemplate {
  const t = load(readFileSync(`${WEB_DIR}template.yaml`, 'utf8')) as ServiceTemplate;
  t.metadata.namespace = namespace;
  const spec = t.spec!;
  spec.image = { ...spec.image, path: `${WEB_DIR}image` };
  if (opts.periodSeconds !== undefined && spec.healthCheck) {
    spec.healthCheck = { ...spec.healthCheck, periodSeconds: opts.periodSeconds };
  }
  return t;
}

/** An instance of the web template, as manifests/web/instance.yaml (no host: this host places it). */
export function webInstance(namespace: string, name: string): ServiceInstance {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/name': 'web' } },
    spec: {
      templateRef: { name: 'web' },
      parameters: { greeting: `hello from ${name}` },
      runStrategy: 'Always',
      driver: 'process',
    },
  };
}

/** The status of condition `type` on an object, if it has one. */
export function conditionStatus(obj: { status?: object } | undefined, type: string): string | undefined {
  const conditions = (obj?.status as { conditions?: Condition[] } | undefined)?.conditions;
  return conditions?.find((c) => c.type === type)?.status;
}

/** Creates the web template and waits until it is Ready on this host (its image imported). Returns ms. */
export async function applyWebTemplate(
  client: XenosClient,
  namespace: string,
  opts: { periodSeconds?: number; timeoutMs?: number } = {},
): Promise<number> {
  const t0 = performance.now();
  await client.create(SERVICE_TEMPLATE, webTemplate(namespace, opts), { namespace });
  await until(
    async () => conditionStatus(await client.get(SERVICE_TEMPLATE, 'web', { namespace }), 'Ready') === 'True',
    opts.timeoutMs ?? 60_000,
    `template ${namespace}/web to be Ready`,
    50,
  );
  return performance.now() - t0;
}

/** Short lines about instances that are not Ready: phase and the message of each False condition. */
export async function whyNotReady(client: XenosClient, namespace: string, max = 5): Promise<string[]> {
  const list = await client.list(SERVICE_INSTANCE, { namespace });
  return list.items
    .filter((i) => conditionStatus(i, 'Ready') !== 'True')
    .slice(0, max)
    .map((i) => {
      const falses = (i.status?.conditions ?? [])
        .filter((c) => c.status !== 'True')
        .map((c) => `${c.type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`);
      return `${i.metadata.name}: phase ${i.status?.phase ?? '-'}; ${falses.join('; ') || 'no conditions'}`;
    });
}

/** Deletes every instance in `namespace`, waits until the API lists none and no domain process of the
 *  xenosd at `dataDir` is left. Returns how long that took, ms. */
export async function deleteAllInstances(
  client: XenosClient,
  namespace: string,
  dataDir: string,
  timeoutMs = 120_000,
): Promise<number> {
  const t0 = performance.now();
  const list = await client.list(SERVICE_INSTANCE, { namespace });
  await Promise.all(list.items.map((i) => client.delete(SERVICE_INSTANCE, i.metadata.name, { namespace })));
  await until(
    async () => (await client.list(SERVICE_INSTANCE, { namespace })).items.length === 0,
    timeoutMs,
    `every instance in ${namespace} deleted`,
    100,
  );
  await until(
    async () => (await domainPids(dataDir)).length === 0,
    timeoutMs,
    `every domain process under ${dataDir} gone`,
    100,
  );
  return performance.now() - t0;
}

/** Last resort after a failed clean-up: SIGKILL what is left of the domains of this xenosd (only ours). */
export async function killLeftoverDomains(dataDir: string): Promise<number> {
  const pids = await domainPids(dataDir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return pids.length;
}
