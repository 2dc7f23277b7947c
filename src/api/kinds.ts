// The kind registry: reads crds/*.yaml (the single source of truth for every kind), checks that each
// CRD is well-formed and structural the way the Kubernetes apiserver would, and answers "which kind
// is `si` / `serviceinstances.xenos.io` / `ServiceInstance`?" the way kubectl resolves names.
// Over 400 lines because a CRD is checked where it is parsed (names, printer columns, the structural
// schema walk), so every refusal carries the file and field path it came from.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import type { KindNames, PrinterColumn } from '../model/api-resource.ts';
import type { CrdVersion, CustomResourceDefinition, SchemaNode } from '../model/crd.ts';
import { GROUP, VERSION, XENOS_KINDS } from '../model/kinds.ts';
import { DNS1123_LABEL } from '../model/names.ts';
import { packageFile } from '../model/package-root.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';

/** `<package>/crds/`, found from the package's root so it works from any working directory. */
export const DEFAULT_CRD_DIR = `${packageFile('crds')}/`;

export interface KindInfo extends KindNames {
  /** The served version's openAPIV3Schema, as written in the CRD. */
  schema: SchemaNode;
  printerColumns: PrinterColumn[];
  statusSubresource: boolean;
  /** Set when the CRD declares a scale subresource. */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  /** The file the CRD came from (absolute path). */
  file: string;
  /** The whole CRD object. */
  crd: CustomResourceDefinition;
}

export interface KindRegistry {
  all(): KindInfo[];
  byKind(kind: string): KindInfo | undefined;
  /** Plural, singular, short name or Kind (any case), alone or as `<name>.<group>` or
   *  `<name>.<version>.<group>` (`serviceinstances.v1alpha1.xenos.io`), as kubectl accepts. */
  resolve(nameOrAlias: string): KindInfo | undefined;
}

/** A CRD file that cannot be used: names the file and the field path inside it. */
export class CrdError extends Error {
  readonly file: string;
  readonly path: string;
  constructor(file: string, path: string, message: string) {
    super(`${file}${path ? `: ${path}` : ''}: ${message}`);
    this.name = 'CrdError';
    this.file = file;
    this.path = path;
  }
}

const cache = new Map<string, KindRegistry>();

/** Loads every `*.yaml`/`*.yml`/`*.json` CRD in `crdDir` (memoised per directory). Throws CrdError. */
export function loadKinds(crdDir: string = DEFAULT_CRD_DIR): KindRegistry {
  const hit = cache.get(crdDir);
  if (hit) return hit;
  let files: string[];
  try {
    files = readdirSync(crdDir)
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort();
  } catch (err) {
    throw new CrdError(crdDir, '', `cannot read the CRD directory: ${(err as Error).message}`);
  }
  if (files.length === 0) throw new CrdError(crdDir, '', 'no CRD files (*.yaml) found');
  const kinds: KindInfo[] = [];
  for (const f of files) {
    const file = join(crdDir, f);
    let doc: unknown;
    try {
      doc = load(readFileSync(file, 'utf8'), { filename: file });
    } catch (err) {
      throw new CrdError(file, '', `not valid YAML: ${(err as Error).message}`);
    }
    kinds.push(parseCrd(doc, file));
  }
  const registry = createKindRegistry(kinds);
  cache.set(crdDir, registry);
  return registry;
}

/** Builds a registry from already-parsed kinds; rejects two kinds claiming one name or alias. */
export function createKindRegistry(kinds: KindInfo[]): KindRegistry {
  const byKind = new Map<string, KindInfo>();
  const aliases = new Map<string, KindInfo>();
  for (const k of kinds) {
    if (byKind.has(k.kind)) throw new CrdError(k.file, 'spec.names.kind', `kind ${k.kind} is defined twice`);
    byKind.set(k.kind, k);
    for (const name of [k.plural, k.singular, k.kind.toLowerCase(), ...k.shortNames]) {
      for (const alias of [name, `${name}.${k.group}`, `${name}.${k.version}.${k.group}`]) {
        const other = aliases.get(alias);
        if (other && other !== k) {
          throw new CrdError(k.file, 'spec.names', `"${name}" already names ${other.kind} (${other.file})`);
        }
        aliases.set(alias, k);
      }
    }
  }
  const sorted = [...byKind.values()].sort((a, b) => a.kind.localeCompare(b.kind));
  return {
    all: () => sorted.slice(),
    byKind: (kind) => byKind.get(kind),
    resolve: (nameOrAlias) => aliases.get(nameOrAlias.trim().toLowerCase()),
  };
}

const KIND_NAME = /^[A-Z][A-Za-z0-9]*$/;
const PRINTER_TYPES = new Set(['integer', 'number', 'string', 'boolean', 'date']);

/** Checks one CRD object and turns it into a KindInfo. Throws CrdError naming `file` and the field. */
export function parseCrd(crd: unknown, file: string): KindInfo {
  const fail = (path: PathSegment[], message: string): never => {
    throw new CrdError(file, formatFieldPath(path), message);
  };
  if (!isObject(crd)) return fail([], 'must be a CustomResourceDefinition object');
  if (crd.apiVersion !== 'apiextensions.k8s.io/v1') fail(['apiVersion'], 'must be apiextensions.k8s.io/v1');
  if (crd.kind !== 'CustomResourceDefinition') fail(['kind'], 'must be CustomResourceDefinition');
  const spec = crd.spec;
  if (!isObject(spec)) return fail(['spec'], 'is required');
  if (spec.group !== GROUP) fail(['spec', 'group'], `must be ${GROUP}`);
  const names = spec.names;
  if (!isObject(names)) return fail(['spec', 'names'], 'is required');
  const kind = names.kind;
  if (typeof kind !== 'string' || !KIND_NAME.test(kind)) {
    return fail(['spec', 'names', 'kind'], 'must be a CamelCase kind name');
  }
  const plural = names.plural;
  if (typeof plural !== 'string' || !DNS1123_LABEL.test(plural)) {
    return fail(['spec', 'names', 'plural'], 'must be a lower-case DNS-1123 label');
  }
  const singular = names.singular ?? kind.toLowerCase();
  if (typeof singular !== 'string' || !DNS1123_LABEL.test(singular)) {
    return fail(['spec', 'names', 'singular'], 'must be a lower-case DNS-1123 label');
  }
  const listKind = names.listKind ?? `${kind}List`;
  if (typeof listKind !== 'string' || !KIND_NAME.test(listKind)) {
    return fail(['spec', 'names', 'listKind'], 'must be a CamelCase kind name');
  }
  const shortNames = stringList(names.shortNames, ['spec', 'names', 'shortNames'], fail);
  for (const [i, s] of shortNames.entries()) {
    if (!DNS1123_LABEL.test(s))
      fail(['spec', 'names', 'shortNames', i], 'must be a lower-case DNS-1123 label');
  }
  const categories = stringList(names.categories, ['spec', 'names', 'categories'], fail);
  checkKnownNames({ kind, listKind, plural, singular, shortNames, categories, scope: spec.scope }, fail);
  const metaName = isObject(crd.metadata) ? crd.metadata.name : undefined;
  if (metaName !== `${plural}.${GROUP}`) fail(['metadata', 'name'], `must be ${plural}.${GROUP}`);
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
    fail(['spec', 'scope'], 'must be Namespaced or Cluster');
  }
  if (!Array.isArray(spec.versions) || spec.versions.length === 0) {
    return fail(['spec', 'versions'], 'must list at least one version');
  }
  const storage = spec.versions.filter((v: any) => isObject(v) && v.storage === true);
  if (storage.length !== 1) fail(['spec', 'versions'], 'exactly one version must have storage: true');
  const vi = spec.versions.indexOf(storage[0]);
  const version: CrdVersion = storage[0];
  const vpath = ['spec', 'versions', vi];
  if (version.name !== VERSION) fail([...vpath, 'name'], `the storage version must be ${VERSION}`);
  if (version.served !== true) fail([...vpath, 'served'], 'the storage version must be served');
  const schema = version.schema?.openAPIV3Schema;
  if (!isObject(schema)) return fail([...vpath, 'schema', 'openAPIV3Schema'], 'is required');
  checkStructural(schema, [...vpath, 'schema', 'openAPIV3Schema'], fail);
  if (schema.type !== 'object') fail([...vpath, 'schema', 'openAPIV3Schema', 'type'], 'must be object');

  const subresources: Record<string, any> = isObject(version.subresources) ? version.subresources : {};
  const printerColumns = parsePrinterColumns(
    version.additionalPrinterColumns,
    [...vpath, 'additionalPrinterColumns'],
    fail,
  );
  let scale: KindInfo['scale'];
  if (isObject(subresources.scale)) {
    const s = subresources.scale;
    for (const key of ['specReplicasPath', 'statusReplicasPath']) {
      if (typeof s[key] !== 'string' || !s[key].startsWith('.')) {
        fail([...vpath, 'subresources', 'scale', key], 'must be a path like .spec.replicas');
      }
    }
    scale = { specReplicasPath: s.specReplicasPath, statusReplicasPath: s.statusReplicasPath };
    if (typeof s.labelSelectorPath === 'string') scale.labelSelectorPath = s.labelSelectorPath;
  }
  return {
    group: GROUP,
    version: VERSION,
    apiVersion: `${GROUP}/${VERSION}`,
    kind,
    listKind,
    plural,
    singular,
    shortNames,
    categories,
    namespaced: spec.scope === 'Namespaced',
    schema,
    printerColumns,
    statusSubresource: isObject(subresources.status),
    scale,
    file,
    crd: {
      apiVersion: crd.apiVersion,
      kind: crd.kind,
      metadata: crd.metadata,
      spec: { ...spec, group: spec.group, names: spec.names, scope: spec.scope, versions: spec.versions },
    },
  };
}

/** A CRD of a kind src/model/kinds.ts names must give it the same names and scope, so the constants the
 *  code uses and the CRDs the API serves never disagree. */
function checkKnownNames(
  names: Omit<KindNames, 'group' | 'version' | 'apiVersion' | 'namespaced'> & { scope: unknown },
  fail: Fail,
): void {
  const known = XENOS_KINDS.find((k) => k.kind === names.kind);
  if (!known) return;
  for (const field of ['listKind', 'plural', 'singular', 'shortNames', 'categories'] as const) {
    const want = JSON.stringify(known[field]);
    if (JSON.stringify(names[field]) !== want) {
      fail(['spec', 'names', field], `must be ${want} for ${names.kind}, as src/model/kinds.ts names it`);
    }
  }
  const scope = known.namespaced ? 'Namespaced' : 'Cluster';
  if (names.scope !== scope) fail(['spec', 'scope'], `must be ${scope} for ${names.kind}`);
}

type Fail = (path: PathSegment[], message: string) => never;

function stringList(v: unknown, path: PathSegment[], fail: Fail): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) fail(path, 'must be a list of strings');
  return (v as string[]).slice();
}

function parsePrinterColumns(v: unknown, path: PathSegment[], fail: Fail): PrinterColumn[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return fail(path, 'must be a list');
  return v.map((c, i) => {
    const p = [...path, i];
    if (!isObject(c)) return fail(p, 'must be an object');
    if (typeof c.name !== 'string' || c.name === '') fail([...p, 'name'], 'is required');
    if (!PRINTER_TYPES.has(c.type)) fail([...p, 'type'], `must be one of ${[...PRINTER_TYPES].join(', ')}`);
    if (typeof c.jsonPath !== 'string' || !c.jsonPath.startsWith('.')) {
      fail([...p, 'jsonPath'], 'must be a JSONPath starting with "."');
    }
    if (c.priority !== undefined && (!Number.isInteger(c.priority) || c.priority < 0)) {
      fail([...p, 'priority'], 'must be a non-negative integer');
    }
    const col: PrinterColumn = { name: c.name, type: c.type, jsonPath: c.jsonPath };
    if (typeof c.description === 'string') col.description = c.description;
    if (c.priority !== undefined) col.priority = c.priority;
    if (typeof c.format === 'string') col.format = c.format;
    return col;
  });
}

const SCHEMA_TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const JUNCTORS = ['allOf', 'anyOf', 'oneOf', 'not'] as const;
/** The keywords a CRD schema may use (apiextensions.k8s.io/v1 JSONSchemaProps). */
const KNOWN_KEYWORDS = new Set([
  'type',
  'format',
  'title',
  'description',
  'properties',
  'additionalProperties',
  'items',
  'required',
  'enum',
  'default',
  'nullable',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'example',
  'externalDocs',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
]);

/**
 * The apiserver's structural-schema rules, plus what this validator cannot honour: every node has
 * a type (unless int-or-string or preserve-unknown-fields), junctors (allOf/anyOf/oneOf/not) carry no
 * type/default/description/additionalProperties/nullable and name only fields declared outside them,
 * no $ref, no uniqueItems, no `additionalProperties: false`, properties and additionalProperties not
 * both, only name/generateName under the root metadata, list-map keys required or defaulted, and no
 * unknown keyword (a typo like `requried` would silently validate nothing).
 */
function checkStructural(root: SchemaNode, rootPath: PathSegment[], fail: Fail): void {
  const visit = (node: unknown, path: PathSegment[], inJunctor: boolean, declared?: SchemaNode): void => {
    if (!isObject(node)) return void fail(path, 'must be a schema object');
    for (const key of Object.keys(node)) {
      if (key === 'x-kubernetes-validations') {
        fail(
          [...path, key],
          'CEL validation rules are not supported by Xenos; express the rule with the schema',
        );
      }
      if (!KNOWN_KEYWORDS.has(key)) fail([...path, key], `unknown schema keyword "${key}"`);
    }
    const intOrString = node['x-kubernetes-int-or-string'] === true;
    const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
    if (inJunctor) {
      for (const k of ['type', 'default', 'description', 'additionalProperties', 'nullable']) {
        if (k in node) fail([...path, k], `must not be set inside allOf/anyOf/oneOf/not (structural schema)`);
      }
      if (isObject(node.properties)) {
        for (const name of Object.keys(node.properties)) {
          if (!declared || !isObject(declared.properties) || !(name in declared.properties)) {
            fail(
              [...path, 'properties', name],
              'a field named inside a junctor must also be declared outside it',
            );
          }
        }
      }
      if (isObject(node.properties)) {
        for (const [name, sub] of Object.entries(node.properties)) {
          visit(sub, [...path, 'properties', name], true, declared?.properties?.[name]);
        }
      }
      if (node.items !== undefined) visit(node.items, [...path, 'items'], true, declared?.items);
      for (const j of JUNCTORS) visitJunctor(node[j], [...path, j], declared);
      return;
    }
    if (node.type === undefined) {
      if (!intOrString && !preserve) fail([...path, 'type'], 'is required (structural schema)');
    } else if (!SCHEMA_TYPES.has(node.type)) {
      fail([...path, 'type'], `must be one of ${[...SCHEMA_TYPES].join(', ')}`);
    }
    if (node.uniqueItems === true)
      fail([...path, 'uniqueItems'], 'is forbidden; use x-kubernetes-list-type: set');
    if (node.additionalProperties === false) {
      fail([...path, 'additionalProperties'], 'must not be false (unknown fields are rejected anyway)');
    }
    if (node.properties !== undefined && node.additionalProperties !== undefined) {
      fail([...path, 'additionalProperties'], 'must not be set together with properties');
    }
    if (node.required !== undefined) {
      if (!Array.isArray(node.required) || node.required.some((r: unknown) => typeof r !== 'string')) {
        fail([...path, 'required'], 'must be a list of field names');
      }
      for (const r of node.required) {
        if (!isObject(node.properties) || !(r in node.properties)) {
          fail([...path, 'required'], `names "${r}", which is not among the properties`);
        }
      }
    }
    if (node.pattern !== undefined) {
      try {
        new RegExp(node.pattern, 'u');
      } catch (err) {
        fail([...path, 'pattern'], `is not a valid regular expression: ${(err as Error).message}`);
      }
    }
    if (node.properties !== undefined) {
      if (!isObject(node.properties)) fail([...path, 'properties'], 'must be a mapping of field schemas');
      for (const [name, sub] of Object.entries(node.properties))
        visit(sub, [...path, 'properties', name], false);
    }
    if (node.additionalProperties !== undefined && node.additionalProperties !== true) {
      visit(node.additionalProperties, [...path, 'additionalProperties'], false);
    }
    if (node.items !== undefined) {
      if (Array.isArray(node.items)) fail([...path, 'items'], 'must be one schema, not a list');
      visit(node.items, [...path, 'items'], false);
    }
    if (node.type === 'array' && node.items === undefined && !preserve) {
      fail([...path, 'items'], 'is required for arrays (structural schema)');
    }
    checkListType(node, path, fail);
    for (const j of JUNCTORS) visitJunctor(node[j], [...path, j], node);
  };
  const visitJunctor = (v: unknown, path: PathSegment[], declared: SchemaNode | undefined): void => {
    if (v === undefined) return;
    if (Array.isArray(v)) {
      for (const [i, s] of v.entries()) visit(s, [...path, i], true, declared);
    } else visit(v, path, true, declared);
  };
  visit(root, rootPath, false);
  const meta = root.properties?.metadata;
  if (isObject(meta)) {
    for (const name of Object.keys(meta.properties ?? {})) {
      if (name !== 'name' && name !== 'generateName') {
        fail(
          [...rootPath, 'properties', 'metadata', 'properties', name],
          'only name and generateName may be restricted',
        );
      }
    }
  }
}

function checkListType(node: SchemaNode, path: PathSegment[], fail: Fail): void {
  const listType = node['x-kubernetes-list-type'];
  if (listType === undefined) return;
  if (node.type !== 'array') fail([...path, 'x-kubernetes-list-type'], 'is only allowed on arrays');
  if (!['atomic', 'set', 'map'].includes(listType)) {
    fail([...path, 'x-kubernetes-list-type'], 'must be atomic, set or map');
  }
  if (listType !== 'map') return;
  const keys = node['x-kubernetes-list-map-keys'];
  if (!Array.isArray(keys) || keys.length === 0) {
    fail([...path, 'x-kubernetes-list-map-keys'], 'must name the key fields of a map list');
  }
  const item = node.items ?? {};
  for (const key of keys) {
    const declared = item.properties?.[key];
    if (!declared)
      fail([...path, 'x-kubernetes-list-map-keys'], `names "${key}", which the items do not declare`);
    if (!(item.required ?? []).includes(key) && declared.default === undefined) {
      fail([...path, 'x-kubernetes-list-map-keys'], `key "${key}" must be required or have a default`);
    }
  }
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
