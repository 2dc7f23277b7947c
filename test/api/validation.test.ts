// Validation compiled from the CRDs: each kind of mistake gets its field path, reason and a message
// saying what was expected; defaults are applied like the apiserver; unknown fields are reported,
// ignored or pruned as fieldValidation asks; Kubernetes schema extensions behave.

import { describe, expect, it } from 'vitest';
import { createKindRegistry, loadKinds, parseCrd } from '../../src/api/kinds.ts';
import { type FieldError, Validator } from '../../src/api/validation.ts';
import type { SchemaNode } from '../../src/model/crd.ts';

const registry = loadKinds();
const validator = new Validator(registry);

function instance(spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): any {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceInstance',
    metadata: { name: 'web-1', namespace: 'default', ...metadata },
    spec: { templateRef: { name: 'web' }, ...spec },
  };
}

function template(spec: Record<string, unknown> = {}): any {
  return {
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'ServiceTemplate',
    metadata: { name: 'web' },
    spec: { image: { path: './image' }, ...spec },
  };
}

/** The single error for `path`, failing when there is none or several. */
function only(errors: FieldError[], path: string): FieldError {
  const at = errors.filter((e) => e.path === path);
  expect(at, JSON.stringify(errors, null, 2)).toHaveLength(1);
  return at[0];
}

describe('Validator.validate', () => {
  it('accepts a valid object of every kind', () => {
    const host = {
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'Host',
      metadata: { name: 'node-1.lab' },
      spec: {},
    };
    const deployment = {
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceDeployment',
      metadata: { name: 'workers' },
      spec: { replicas: 3, template: { spec: { templateRef: { name: 'w' } } }, spread: { maxPerHost: 2 } },
    };
    const migration = {
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceMigration',
      metadata: { name: 'm1' },
      spec: { instanceRef: { name: 'web-1' }, targetHost: 'node-2', mode: 'Live' },
    };
    for (const obj of [instance(), template(), host, deployment, migration]) {
      expect(validator.validate(obj), obj.kind).toEqual([]);
    }
  });

  const cases: [string, any, string, FieldError['reason'], string | RegExp][] = [
    [
      'a value outside an enum',
      instance({ runStrategy: 'Sometimes' }),
      'spec.runStrategy',
      'FieldValueNotSupported',
      'must be one of Always, RerunOnFailure, Manual, Halted; got "Sometimes"',
    ],
    [
      'a missing required field',
      instance({ templateRef: undefined }),
      'spec.templateRef',
      'FieldValueRequired',
      'Required value: The ServiceTemplate (in the same namespace) the instance runs.',
    ],
    ['an unknown field', instance({ x: 1 }), 'spec.x', 'FieldValueUnknown', 'unknown field "spec.x"'],
    [
      'an unknown nested field',
      template({ ports: [{ name: 'http', port: 80, prot: 'TCP' }] }),
      'spec.ports[0].prot',
      'FieldValueUnknown',
      'unknown field "spec.ports[0].prot"',
    ],
    [
      'a quoted number',
      instance({ resources: { vcpus: '2' } }),
      'spec.resources.vcpus',
      'FieldValueTypeInvalid',
      'must be an integer; got "2" (remove the quotes)',
    ],
    [
      'a number where a quantity is wanted',
      instance({ resources: { memory: 512 } }),
      'spec.resources.memory',
      'FieldValueTypeInvalid',
      'must be a string; got integer 512 (quote it: "512")',
    ],
    [
      'a bad quantity',
      instance({ resources: { memory: 'lots' } }),
      'spec.resources.memory',
      'FieldValueInvalid',
      'must be a quantity such as 512Mi, 2Gi or 1G; got "lots"',
    ],
    [
      'a port out of range',
      template({ ports: [{ name: 'http', port: 70000 }] }),
      'spec.ports[0].port',
      'FieldValueInvalid',
      'must be <= 65535; got integer 70000',
    ],
    [
      'a bad digest',
      template({ image: { path: 'x', digest: 'sha256:abc' } }),
      'spec.image.digest',
      'FieldValueInvalid',
      /^must be a digest: sha256: followed by 64 lower-case hex digits/,
    ],
    [
      'both url and path',
      template({ image: { path: 'x', url: 'https://example.org/x.img' } }),
      'spec.image',
      'FieldValueForbidden',
      'may set only one of url, path or digest; got url and path',
    ],
    [
      'an image with no source',
      template({ image: { format: 'raw' } }),
      'spec.image',
      'FieldValueRequired',
      'Required value: must set exactly one of url, path or digest',
    ],
    [
      'a health check without a probe',
      template({ healthCheck: { periodSeconds: 5 } }),
      'spec.healthCheck',
      'FieldValueRequired',
      'Required value: must set exactly one of tcp, http or exec',
    ],
    [
      'a duplicate port name',
      template({
        ports: [
          { name: 'http', port: 80 },
          { name: 'http', port: 81 },
        ],
      }),
      'spec.ports[1]',
      'FieldValueDuplicate',
      'Duplicate value: name "http" is already used by spec.ports[0]',
    ],
    [
      'an int-or-string given a boolean',
      template({ healthCheck: { tcp: { port: true } } }),
      'spec.healthCheck.tcp.port',
      'FieldValueTypeInvalid',
      'must be an integer or a string; got boolean true',
    ],
    [
      'too long a string',
      template({ serviceType: `${'a'.repeat(254)}` }),
      'spec.serviceType',
      'FieldValueTooLong',
      'must have at most 253 characters; got 254',
    ],
    [
      'an upper-case instance name (instances need DNS labels)',
      instance({}, { name: 'Web_1' }),
      'metadata.name',
      'FieldValueInvalid',
      /^must be a DNS-1123 label: .*; got "Web_1"$/,
    ],
    [
      'a dotted instance name',
      instance({}, { name: 'web.1' }),
      'metadata.name',
      'FieldValueInvalid',
      /DNS-1123 label/,
    ],
    [
      'a name too long for a subdomain',
      template({}),
      'metadata.name',
      'FieldValueTooLong',
      'must have at most 253 characters; got 254',
    ],
    [
      'a missing name',
      instance({}, { name: undefined }),
      'metadata.name',
      'FieldValueRequired',
      /needs a name/,
    ],
    [
      'a bad namespace',
      instance({}, { namespace: 'My_NS' }),
      'metadata.namespace',
      'FieldValueInvalid',
      /DNS-1123 label/,
    ],
    [
      'an unknown metadata field',
      instance({}, { nmae: 'x' }),
      'metadata.nmae',
      'FieldValueUnknown',
      'unknown field "metadata.nmae"',
    ],
    [
      'a bad label key',
      instance({}, { labels: { 'a/b/c': 'x' } }),
      'metadata.labels[a/b/c]',
      'FieldValueInvalid',
      /^label key "a\/b\/c"/,
    ],
    [
      'a bad label value',
      instance({}, { labels: { tier: 'front end' } }),
      'metadata.labels.tier',
      'FieldValueInvalid',
      /label value must be empty or at most 63/,
    ],
    [
      'a non-string label value',
      instance({}, { labels: { replicas: 3 } }),
      'metadata.labels.replicas',
      'FieldValueTypeInvalid',
      /must be a string/,
    ],
    [
      'a bad annotation key',
      instance({}, { annotations: { '-x': 'y' } }),
      'metadata.annotations[-x]',
      'FieldValueInvalid',
      /annotation key "-x"/,
    ],
    [
      'a wrong apiVersion',
      { ...instance(), apiVersion: 'apps/v1' },
      'apiVersion',
      'FieldValueNotSupported',
      'must be xenos.io/v1alpha1; got "apps/v1"',
    ],
    [
      'an unknown kind',
      { ...instance(), kind: 'Pod' },
      'kind',
      'FieldValueNotSupported',
      'must be one of Host, ManifestSource, ServiceDeployment, ServiceInstance, ServiceMigration, ServiceTemplate; got "Pod"',
    ],
    [
      'a namespace on a cluster-scoped kind',
      { apiVersion: 'xenos.io/v1alpha1', kind: 'Host', metadata: { name: 'h1', namespace: 'default' } },
      'metadata.namespace',
      'FieldValueForbidden',
      'Host is cluster-scoped and has no namespace; remove metadata.namespace',
    ],
    [
      'a deployment with negative replicas',
      {
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceDeployment',
        metadata: { name: 'w' },
        spec: { replicas: -1, template: { spec: { templateRef: { name: 'w' } } } },
      },
      'spec.replicas',
      'FieldValueInvalid',
      'must be >= 0; got integer -1',
    ],
    [
      'a host field in a deployment template',
      {
        apiVersion: 'xenos.io/v1alpha1',
        kind: 'ServiceDeployment',
        metadata: { name: 'w' },
        spec: { template: { spec: { templateRef: { name: 'w' }, host: 'node-1' } } },
      },
      'spec.template.spec.host',
      'FieldValueUnknown',
      'unknown field "spec.template.spec.host"',
    ],
  ];
  cases.find(([name]) => name === 'a name too long for a subdomain')![1].metadata.name = 'a'.repeat(254);

  it.each(cases)('reports %s', (_name, obj, path, reason, message) => {
    const e = only(validator.validate(obj), path);
    expect(e.reason).toBe(reason);
    if (typeof message === 'string') expect(e.message).toBe(message);
    else expect(e.message).toMatch(message);
  });

  it('accepts an image named by its digest alone, or a URL with the digest it must have', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    expect(validator.validate(template({ image: { digest, format: 'directory' } }))).toEqual([]);
    expect(validator.validate(template({ image: { url: 'https://example.org/d.img', digest } }))).toEqual([]);
    expect(
      only(validator.validate(template({ image: { path: '/x', digest: 'sha256:no' } })), 'spec.image.digest')
        .reason,
    ).toBe('FieldValueInvalid');
  });

  it('reports every error of an object, not just the first', () => {
    const errors = validator.validate(instance({ runStrategy: 'x', driver: 'vmware', y: 1 }, { name: 'A' }));
    expect(errors.map((e) => e.path).sort()).toEqual([
      'metadata.name',
      'spec.driver',
      'spec.runStrategy',
      'spec.y',
    ]);
  });

  it('rejects what is not an object at all', () => {
    expect(validator.validate('hello')).toEqual([
      {
        path: '',
        reason: 'FieldValueTypeInvalid',
        message: 'an object must be a mapping with apiVersion, kind, metadata and spec; got "hello"',
      },
    ]);
  });

  it('allows the metadata the server sets', () => {
    const obj = instance(
      {},
      {
        uid: '0b0c6c4e-5a43-4a6c-9a1b-1d2c3e4f5a6b',
        resourceVersion: '42',
        generation: 3,
        creationTimestamp: '2024-05-01T12:00:00Z',
        deletionTimestamp: '2024-05-01T12:05:00.123+02:00',
        finalizers: ['xenos.io/domain'],
        managedFields: [{ manager: 'xenosctl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
        ownerReferences: [
          {
            apiVersion: 'xenos.io/v1alpha1',
            kind: 'ServiceDeployment',
            name: 'w',
            uid: 'u1',
            controller: true,
          },
        ],
      },
    );
    expect(validator.validate(obj)).toEqual([]);
    obj.metadata.creationTimestamp = 'yesterday';
    expect(only(validator.validate(obj), 'metadata.creationTimestamp').message).toMatch(/RFC 3339/);
  });

  it('needs a name on update even with generateName; on create generateName is enough', () => {
    const obj = instance({}, { name: undefined, generateName: 'web-' });
    expect(validator.validate(obj)).toEqual([]);
    expect(only(validator.validate(obj, { forUpdate: true }), 'metadata.name').reason).toBe(
      'FieldValueRequired',
    );
  });

  it('ignores status on ordinary writes and checks it (and only it) on status writes', () => {
    const obj = instance({ runStrategy: 'Bad' });
    obj.status = { phase: 'Running', restarts: 'many', conditions: [{ type: 'Ready', status: 'Maybe' }] };
    expect(validator.validate(obj).map((e) => e.path)).toEqual(['spec.runStrategy']);
    const statusErrors = validator.validate(obj, { subresource: 'status' });
    expect(statusErrors.map((e) => `${e.path} ${e.reason}`).sort()).toEqual([
      'status.conditions[0].lastTransitionTime FieldValueRequired',
      'status.conditions[0].message FieldValueRequired',
      'status.conditions[0].reason FieldValueRequired',
      'status.conditions[0].status FieldValueNotSupported',
      'status.restarts FieldValueTypeInvalid',
    ]);
    delete obj.spec;
    expect(validator.validate(obj, { subresource: 'status' }).some((e) => e.path === 'spec')).toBe(false);
  });
});

describe('unknown fields', () => {
  const obj = () => instance({ x: 1, resources: { memory: '1Gi', cpu: 2 } }, { colour: 'blue' });

  it('lists their paths', () => {
    expect(validator.unknownFields(obj()).sort()).toEqual([
      'metadata.colour',
      'spec.resources.cpu',
      'spec.x',
    ]);
  });

  it('are errors under Strict and left out under Warn and Ignore', () => {
    expect(validator.validate(obj()).filter((e) => e.reason === 'FieldValueUnknown')).toHaveLength(3);
    expect(validator.validate(obj(), { fieldValidation: 'Warn' })).toEqual([]);
    expect(validator.validate(obj(), { fieldValidation: 'Ignore' })).toEqual([]);
  });

  it('can be pruned, leaving a valid object', () => {
    const o = obj();
    expect(validator.pruneUnknownFields(o).sort()).toEqual([
      'metadata.colour',
      'spec.resources.cpu',
      'spec.x',
    ]);
    expect(o.spec).toEqual({ templateRef: { name: 'web' }, resources: { memory: '1Gi' } });
    expect(validator.validate(o)).toEqual([]);
  });
});

describe('Validator.applyDefaults', () => {
  it('fills the CRD defaults where fields are absent, at every depth, without overwriting', () => {
    const t = validator.applyDefaults(
      template({
        domain: { memory: '1Gi', disks: [{ name: 'root', source: 'image' }] },
        ports: [{ name: 'http', port: 8080 }],
        healthCheck: { http: { port: 'http' }, periodSeconds: 2 },
        parameters: [{ name: 'greeting' }],
      }),
    );
    expect(t.spec.domain).toEqual({
      memory: '1Gi',
      vcpus: 1,
      disks: [{ name: 'root', source: 'image', bus: 'virtio', readOnly: false }],
    });
    expect(t.spec.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect(t.spec.healthCheck).toEqual({
      http: { port: 'http', path: '/' },
      initialDelaySeconds: 0,
      periodSeconds: 2,
      timeoutSeconds: 1,
      failureThreshold: 3,
      successThreshold: 1,
    });
    expect(t.spec.parameters).toEqual([{ name: 'greeting', required: false }]);
    expect(t.spec.process).toBeUndefined();
    expect(validator.validate(t)).toEqual([]);

    const i = validator.applyDefaults(instance());
    expect(i.spec.runStrategy).toBe('Always');
    const d: any = validator.applyDefaults({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceDeployment',
      metadata: { name: 'w' },
      spec: { template: { spec: { templateRef: { name: 'w' } } }, failover: {} },
    });
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.failover).toEqual({ enabled: true, hostDownSeconds: 30, singleton: false });
    expect(d.spec.template.spec.runStrategy).toBe('Always');
    expect(d.spec.spread).toBeUndefined();
  });

  it('leaves unknown kinds and non-objects alone', () => {
    expect(validator.applyDefaults('x')).toBe('x');
    const pod = { kind: 'Pod', spec: {} };
    expect(validator.applyDefaults(pod)).toEqual({ kind: 'Pod', spec: {} });
  });

  it('every default in the CRDs satisfies its own field schema', () => {
    const checked: string[] = [];
    const visit = (node: SchemaNode, path: string) => {
      if (node.default !== undefined) {
        const d = node.default;
        const type = Array.isArray(d) ? 'array' : Number.isInteger(d) ? 'integer' : typeof d;
        expect(type === node.type || (type === 'integer' && node.type === 'number'), path).toBe(true);
        if (node.enum) expect(node.enum, path).toContain(d);
        if (node.pattern) expect(d, path).toMatch(new RegExp(node.pattern, 'u'));
        if (node.minimum !== undefined) expect(d, path).toBeGreaterThanOrEqual(node.minimum);
        if (node.maximum !== undefined) expect(d, path).toBeLessThanOrEqual(node.maximum);
        checked.push(path);
      }
      for (const [k, sub] of Object.entries(node.properties ?? {})) visit(sub as SchemaNode, `${path}.${k}`);
      if (node.items) visit(node.items, `${path}[]`);
    };
    for (const k of registry.all()) visit(k.schema, k.kind);
    expect(checked.length).toBeGreaterThan(15);
  });
});

describe('Kubernetes schema extensions', () => {
  // A CRD using the extensions the Xenos CRDs do not (yet): nullable, preserve-unknown-fields,
  // exclusive bounds, an unknown format.
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.xenos.io' },
    spec: {
      group: 'xenos.io',
      scope: 'Namespaced',
      names: { kind: 'Widget', plural: 'widgets' },
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: {
                  type: 'object',
                  properties: {
                    note: { type: 'string', nullable: true },
                    colour: { type: 'string', enum: ['red', 'blue'], nullable: true, default: 'red' },
                    free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                    ratio: { type: 'number', minimum: 0, exclusiveMinimum: true },
                    small: { type: 'integer', format: 'int32' },
                    mail: { type: 'string', format: 'email' },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
  const widgets = new Validator(createKindRegistry([parseCrd(crd, 'widgets.yaml')]));
  const widget = (spec: any) => ({
    apiVersion: 'xenos.io/v1alpha1',
    kind: 'Widget',
    metadata: { name: 'w' },
    spec,
  });

  it('honours nullable, preserve-unknown-fields, exclusive bounds and formats', () => {
    expect(
      widgets.validate(widget({ note: null, colour: null, free: { any: { thing: 1 } }, ratio: 0.5 })),
    ).toEqual([]);
    expect(only(widgets.validate(widget({ ratio: 0 })), 'spec.ratio').message).toBe(
      'must be > 0; got integer 0',
    );
    expect(only(widgets.validate(widget({ small: 2 ** 31 })), 'spec.small').message).toMatch(/32-bit/);
    expect(widgets.validate(widget({ mail: 'not checked' }))).toEqual([]);
    expect(only(widgets.validate(widget({ colour: 'green' })), 'spec.colour').reason).toBe(
      'FieldValueNotSupported',
    );
  });

  it('keeps an explicit null for nullable fields instead of defaulting it', () => {
    expect(widgets.applyDefaults(widget({ colour: null })).spec.colour).toBeNull();
    expect(widgets.applyDefaults(widget({})).spec.colour).toBe('red');
  });
});

describe('warming validators', () => {
  it('compiles a kind ahead, so its first write does not pay for the compile', () => {
    const firstValidate = (v: Validator): number => {
      const t0 = performance.now();
      expect(v.validate(instance())).toEqual([]);
      return performance.now() - t0;
    };
    const cold = firstValidate(new Validator(registry));
    const warmed = new Validator(registry);
    warmed.warm(['ServiceInstance', 'NoSuchKind']);
    const warm = firstValidate(warmed);
    // ajv's compile of the ServiceInstance schema is ≈ 150 ms here, a compiled check well under 1 ms.
    expect(warm).toBeLessThan(cold / 4);
  });
});
