// The kind registry: the CRDs in crds/ load and are structural, every kind resolves by each name
// kubectl accepts, and a broken CRD is refused with its file and field path.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { CrdError, DEFAULT_CRD_DIR, loadKinds } from '../../src/api/kinds.ts';

const tmp = mkdtempSync(join(tmpdir(), 'xenos-kinds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('loadKinds (crds/)', () => {
  const registry = loadKinds();

  it('has the six kinds with their scope and names', () => {
    const summary = registry.all().map((k) => [k.kind, k.plural, k.singular, k.shortNames, k.namespaced]);
    expect(summary).toEqual([
      ['Host', 'hosts', 'host', ['ho'], false],
      ['ManifestSource', 'manifestsources', 'manifestsource', ['ms'], false],
      ['ServiceDeployment', 'servicedeployments', 'servicedeployment', ['sd'], true],
      ['ServiceInstance', 'serviceinstances', 'serviceinstance', ['si'], true],
      ['ServiceMigration', 'servicemigrations', 'servicemigration', ['smig'], true],
      ['ServiceTemplate', 'servicetemplates', 'servicetemplate', ['st'], true],
    ]);
    for (const k of registry.all()) {
      expect(k.apiVersion).toBe('xenos.io/v1alpha1');
      expect(k.listKind).toBe(`${k.kind}List`);
      expect(k.statusSubresource).toBe(true);
      expect(k.file).toBe(join(DEFAULT_CRD_DIR, `${k.plural}.xenos.io.yaml`));
      expect(k.schema.type).toBe('object');
    }
  });

  it('resolves each kind by plural, singular, short name and Kind, in any case, with or without the group', () => {
    for (const k of registry.all()) {
      const names = [k.plural, k.singular, k.kind, ...k.shortNames];
      for (const name of names) {
        for (const spelled of [
          name,
          name.toUpperCase(),
          `${name}.xenos.io`,
          `${name.toUpperCase()}.XENOS.IO`,
          `${name}.v1alpha1.xenos.io`,
        ]) {
          expect(registry.resolve(spelled)?.kind, spelled).toBe(k.kind);
        }
      }
      expect(registry.byKind(k.kind)).toBe(k);
    }
    expect(registry.resolve('pods')).toBeUndefined();
    expect(registry.resolve('si.example.com')).toBeUndefined();
    expect(registry.resolve('si.v1.xenos.io')).toBeUndefined();
    expect(registry.byKind('serviceinstance')).toBeUndefined();
  });

  it('has printer columns with Age and wide (priority 1) columns', () => {
    for (const k of registry.all()) {
      const age = k.printerColumns.find((c) => c.name === 'Age');
      expect(age, k.kind).toEqual({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
      expect(k.printerColumns.some((c) => c.priority === 1)).toBe(true);
    }
    expect(registry.byKind('ServiceDeployment')?.scale).toEqual({
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
    });
  });
});

describe('loadKinds rejects broken CRDs', () => {
  const good = load(readFileSync(join(DEFAULT_CRD_DIR, 'serviceinstances.xenos.io.yaml'), 'utf8')) as any;
  const specSchema = (crd: any) => crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
  let n = 0;

  /** Writes `crds` into a fresh directory and returns the error loadKinds throws. */
  function loadError(...crds: any[]): CrdError {
    const dir = join(tmp, `case-${n++}`);
    mkdirSync(dir);
    for (const [i, crd] of crds.entries()) writeFileSync(join(dir, `crd-${i}.yaml`), dump(crd));
    try {
      loadKinds(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(CrdError);
      return err as CrdError;
    }
    throw new Error('loadKinds accepted a broken CRD');
  }

  const cases: [string, (crd: any) => void, string][] = [
    [
      'a field without a type',
      (crd) => delete specSchema(crd).properties.runStrategy.type,
      'spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.runStrategy.type: is required (structural schema)',
    ],
    [
      'a misspelt keyword',
      (crd) => {
        specSchema(crd).requried = specSchema(crd).required;
      },
      'unknown schema keyword "requried"',
    ],
    [
      'a required field that is not declared',
      (crd) => specSchema(crd).required.push('templateRefs'),
      'names "templateRefs", which is not among the properties',
    ],
    [
      'a type inside oneOf',
      (crd) => {
        specSchema(crd).oneOf = [{ type: 'object', required: ['host'] }];
      },
      'oneOf[0].type: must not be set inside allOf/anyOf/oneOf/not',
    ],
    [
      'a CEL rule',
      (crd) => {
        specSchema(crd)['x-kubernetes-validations'] = [{ rule: 'self.x > 0' }];
      },
      'CEL validation rules are not supported',
    ],
    [
      'a wrong metadata.name',
      (crd) => (crd.metadata.name = 'instances.xenos.io'),
      'metadata.name: must be serviceinstances.xenos.io',
    ],
    ['a second group', (crd) => (crd.spec.group = 'example.com'), 'spec.group: must be xenos.io'],
    [
      'a list map whose key is optional',
      (crd) => {
        const endpoints = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties.endpoints;
        endpoints.items.required = ['address'];
      },
      'key "name" must be required or have a default',
    ],
  ];

  it.each(cases)('%s', (_name, breakIt, expected) => {
    const crd = structuredClone(good);
    breakIt(crd);
    const e = loadError(crd);
    expect(e.message).toContain(expected);
    expect(e.message).toMatch(/crd-0\.yaml: /);
  });

  it('refuses two CRDs that claim the same short name', () => {
    const other = structuredClone(good);
    other.metadata.name = 'others.xenos.io';
    Object.assign(other.spec.names, {
      kind: 'Other',
      listKind: 'OtherList',
      plural: 'others',
      singular: 'other',
    });
    const e = loadError(good, other);
    expect(e.message).toContain('"si" already names ServiceInstance');
  });

  it('names the file of a CRD that is not YAML', () => {
    const dir = join(tmp, 'bad-yaml');
    mkdirSync(dir);
    writeFileSync(join(dir, 'x.yaml'), 'spec: [unclosed\n');
    expect(() => loadKinds(dir)).toThrow(/x\.yaml: not valid YAML/);
  });
});
