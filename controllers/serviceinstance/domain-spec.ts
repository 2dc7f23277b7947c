// From a ServiceInstance and its ServiceTemplate to the DomainSpec a driver runs, plus the hash of
// everything that changes the domain (a new hash means restart; anything else is updated in place).
// Pure and deterministic: the same inputs give the same spec, id and hash on every host and every run.
// A spec that can never work (missing or mismatching parameters, a reference to nothing) is a
// TerminalError naming the instance and the field.

import { createHash } from 'node:crypto';
import { failoverEpoch } from '../../src/cluster/failover.ts';
import type {
  DomainProcess,
  DomainResources,
  DomainSpec,
  InstanceIdentity,
} from '../../src/drivers/driver.ts';
import { domainIdFor } from '../../src/drivers/driver.ts';
import { ParameterValueError } from '../../src/drivers/errors.ts';
import { expansionTable, resolveParameters, unknownReferences } from '../../src/drivers/params.ts';
import type { RunStrategy, ServiceInstance } from '../../src/model/service-instance.ts';
import type { HealthCheckSpec, ServiceTemplate } from '../../src/model/service-template.ts';
import { TerminalError } from '../../src/reconcile/errors.ts';
import type { DesiredDomain } from './machine-types.ts';

export function identityOf(instance: ServiceInstance): InstanceIdentity {
  return {
    namespace: instance.metadata.namespace ?? 'default',
    name: instance.metadata.name,
    uid: instance.metadata.uid ?? '',
    templateName: instance.spec?.templateRef.name,
    ...(failoverEpoch(instance) > 0 ? { epoch: failoverEpoch(instance) } : {}),
  };
}

export function domainIdOf(instance: ServiceInstance): string {
  return domainIdFor(identityOf(instance));
}

export function instanceRef(instance: ServiceInstance): string {
  return `ServiceInstance ${instance.metadata.namespace ?? 'default'}/${instance.metadata.name}`;
}

const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const UNITS: Record<string, number> = {
  '': 1,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
};

/** A Kubernetes quantity (`256Mi`, `1G`) in bytes; TerminalError when malformed. */
export function parseQuantity(text: string, field: string, where: string): number {
  const m = QUANTITY.exec(text);
  if (!m) {
    throw new TerminalError(
      'InvalidQuantity',
      `${where}: ${field}: "${text}" is not a quantity like 256Mi or 2Gi`,
    );
  }
  return Math.round(Number(m[1]) * UNITS[m[2] ?? '']);
}

/** CPU as `500m` or `2` → millicores. */
function parseCpu(text: string, field: string, where: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(m?)$/.exec(text);
  if (!m)
    throw new TerminalError(
      'InvalidQuantity',
      `${where}: ${field}: "${text}" is not a CPU amount like 500m or 2`,
    );
  return m[2] ? Math.round(Number(m[1])) : Math.round(Number(m[1]) * 1000);
}

/** JSON with object keys sorted, so equal values hash equally whatever order their keys came in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function domainHash(spec: DomainSpec, healthCheck: HealthCheckSpec | undefined): string {
  return createHash('sha256').update(canonicalJson({ spec, healthCheck })).digest('hex').slice(0, 16);
}

export interface BuildDomainInit {
  /** The local path of the template's imported image. */
  imagePath: string;
  /** Extra environment for the domain's process (where the API is, who the instance is). */
  env?: Record<string, string>;
  /** The instance's notice-board token: the driver hands it to the domain alone (never in its env). */
  token?: string;
}

/** Checks the instance against its template and builds the domain. Throws TerminalError for a bad spec. */
export function buildDesiredDomain(
  instance: ServiceInstance,
  template: ServiceTemplate,
  init: BuildDomainInit,
): DesiredDomain {
  const where = instanceRef(instance);
  const ispec = instance.spec!;
  const tspec = template.spec!;
  const identity = identityOf(instance);
  const id = domainIdFor(identity);

  let parameters: Record<string, string>;
  try {
    parameters = resolveParameters(tspec.parameters, ispec.parameters);
  } catch (err) {
    if (err instanceof ParameterValueError) {
      throw new TerminalError(
        'InvalidParameter',
        `${where}: ${err.message} (template ${template.metadata.name}); fix the instance's spec.parameters`,
      );
    }
    throw err;
  }

  let process: DomainProcess | undefined;
  if (tspec.process) {
    process = {
      command: [...tspec.process.command],
      args: tspec.process.args ? [...tspec.process.args] : undefined,
      env: {
        ...Object.fromEntries((tspec.process.env ?? []).map((e) => [e.name, e.value])),
        ...init.env,
      },
      workingDir: tspec.process.workingDir,
    };
    checkReferences(process, tspec.ports?.map((p) => p.name) ?? [], parameters, identity, id, template);
  }

  const resources: DomainResources = {};
  const memory = ispec.resources?.memory ?? tspec.domain?.memory;
  if (memory) resources.memoryBytes = parseQuantity(memory, 'resources.memory', where);
  const vcpus = ispec.resources?.vcpus ?? tspec.domain?.vcpus;
  if (vcpus !== undefined) resources.vcpus = vcpus;
  if (tspec.domain?.cpuLimit) resources.cpuMillis = parseCpu(tspec.domain.cpuLimit, 'domain.cpuLimit', where);

  const spec: DomainSpec = {
    id,
    instance: identity,
    image: {
      path: init.imagePath,
      digest: template.status?.digest ?? tspec.image.digest,
      format: tspec.image.format,
    },
    parameters,
    process,
    ports: (tspec.ports ?? []).map((p) => ({
      name: p.name,
      port: p.port,
      protocol: p.protocol ?? 'TCP',
      appProtocol: p.appProtocol,
    })),
    resources,
    boot: tspec.domain?.boot,
    disks: tspec.domain?.disks,
    network: tspec.domain?.network,
  };
  if (init.token !== undefined) spec.token = init.token;
  const runStrategy: RunStrategy = ispec.runStrategy ?? 'Always';
  return {
    spec,
    hash: domainHash(spec, tspec.healthCheck),
    runStrategy,
    healthCheck: tspec.healthCheck,
    generation: instance.metadata.generation ?? 1,
  };
}

/** Every `${...}` in the process must name a parameter, a port, the instance or the domain. */
function checkReferences(
  process: DomainProcess,
  portNames: string[],
  params: Record<string, string>,
  instance: InstanceIdentity,
  id: string,
  template: ServiceTemplate,
): void {
  const known = [
    ...expansionTable({ params, instance, domain: { id, dir: '' } }).keys(),
    ...portNames.map((n) => `port.${n}`),
  ];
  const fields: [string, string][] = [
    ...process.command.map((s, i): [string, string] => [`spec.process.command[${i}]`, s]),
    ...(process.args ?? []).map((s, i): [string, string] => [`spec.process.args[${i}]`, s]),
    ...Object.entries(process.env ?? {}).map(([k, v]): [string, string] => [`spec.process.env.${k}`, v]),
  ];
  if (process.workingDir !== undefined) fields.push(['spec.process.workingDir', process.workingDir]);
  for (const [field, text] of fields) {
    const unknown = unknownReferences(text, known);
    if (unknown.length) {
      throw new TerminalError(
        'InvalidReference',
        `ServiceTemplate ${template.metadata.namespace ?? 'default'}/${template.metadata.name}: ${field}: ` +
          `\${${unknown[0]}} refers to nothing; known: ${known.map((k) => `\${${k}}`).join(', ')}`,
      );
    }
  }
}
