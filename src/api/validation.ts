// Validation and defaulting of Xenos objects, compiled from the CRDs' openAPIV3Schema (no second
// schema is written by hand): ajv checks types, enums, patterns and limits; this file adds what the
// Kubernetes apiserver adds on top (the object envelope and ObjectMeta rules, unknown-field
// detection, list-type uniqueness, schema defaults) and turns every failure into a FieldError that
// says where (`spec.ports[0].port`) and what was expected.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { SchemaNode } from '../model/crd.ts';
import { API_VERSION } from '../model/kinds.ts';
import {
  DNS1123_LABEL,
  DNS1123_LABEL_TEXT,
  DNS1123_SUBDOMAIN,
  DNS1123_SUBDOMAIN_TEXT,
  isLabelValue,
  qualifiedNameProblem,
} from '../model/names.ts';
import { formatFieldPath, type PathSegment } from './field-path.ts';
import type { KindInfo, KindRegistry } from './kinds.ts';

export type FieldErrorReason =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueTypeInvalid'
  | 'FieldValueTooLong'
  | 'FieldValueForbidden'
  | 'FieldValueUnknown'
  | 'FieldValueDuplicate';

export interface FieldError {
  /** Where, e.g. `spec.ports[0].port`; `''` for the object itself. */
  path: string;
  reason: FieldErrorReason;
  /** What was wrong and what was expected, e.g. `must be one of Always, Manual; got "Sometimes"`. */
  message: string;
}

export interface ValidateOptions {
  /** An update (the object exists): metadata.name is required even when generateName is set. */
  forUpdate?: boolean;
  /** `status`: a status write — validates `.status` and ignores `.spec`. Otherwise `.status` is ignored. */
  subresource?: 'status';
  /** Unknown fields: Strict (default) reports them as errors; Warn and Ignore leave them out (use
   *  unknownFields() to warn, pruneUnknownFields() to drop them as the apiserver does). */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
}

interface LocatedFieldError extends FieldError {
  segments: PathSegment[];
}

type Variant = 'main' | 'status';

const GENERATE_NAME = /^[a-z0-9]([-a-z0-9.]*)?$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const ANNOTATIONS_MAX_BYTES = 256 * 1024;

/** Plain-words descriptions of the patterns the CRDs use, for error messages. */
const PATTERN_TEXT: Record<string, string> = {
  [DNS1123_LABEL.source]: DNS1123_LABEL_TEXT,
  [DNS1123_SUBDOMAIN.source]: DNS1123_SUBDOMAIN_TEXT,
  '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$': 'a quantity such as 512Mi, 2Gi or 1G',
  '^([0-9]+(\\.[0-9]+)?|[0-9]+m)$': 'a CPU quantity such as 2, 1.5 or 500m',
  '^sha256:[a-f0-9]{64}$': 'a digest: sha256: followed by 64 lower-case hex digits',
  '^[A-Za-z_][A-Za-z0-9_]*$': "a name of letters, digits and '_', not starting with a digit",
  '^https?://[^\\s]+$': 'an http:// or https:// URL',
};

const TYPE_TEXT: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'null',
};

/** The Kubernetes ObjectMeta, which CRDs cannot describe: what clients and the server may set. */
const OBJECT_META: SchemaNode = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'The object name, unique per kind and namespace.', maxLength: 253 },
    generateName: { type: 'string', maxLength: 248 },
    namespace: { type: 'string', maxLength: 63 },
    uid: { type: 'string', maxLength: 128 },
    resourceVersion: { type: 'string', maxLength: 128 },
    generation: { type: 'integer', format: 'int64', minimum: 0 },
    creationTimestamp: { type: 'string', format: 'date-time' },
    deletionTimestamp: { type: 'string', format: 'date-time' },
    deletionGracePeriodSeconds: { type: 'integer', format: 'int64', minimum: 0 },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
    finalizers: { type: 'array', items: { type: 'string' } },
    ownerReferences: {
      type: 'array',
      items: {
        type: 'object',
        required: ['apiVersion', 'kind', 'name', 'uid'],
        properties: {
          apiVersion: { type: 'string', minLength: 1 },
          kind: { type: 'string', minLength: 1 },
          name: { type: 'string', minLength: 1 },
          uid: { type: 'string', minLength: 1 },
          controller: { type: 'boolean' },
          blockOwnerDeletion: { type: 'boolean' },
        },
      },
    },
    managedFields: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
    selfLink: { type: 'string' },
  },
};

/** Formats the apiserver checks; any other format in a CRD is accepted unchecked, as Kubernetes does. */
const FORMATS: Record<
  string,
  { type: 'string'; validate: (s: string) => boolean } | { type: 'number'; validate: (n: number) => boolean }
> = {
  'date-time': { type: 'string', validate: (s: string) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)) },
  date: {
    type: 'string',
    validate: (s: string) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)),
  },
  int32: { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 },
  int64: { type: 'number', validate: (n: number) => Number.isSafeInteger(n) },
  float: { type: 'number', validate: (n: number) => Number.isFinite(n) },
  double: { type: 'number', validate: (n: number) => Number.isFinite(n) },
  byte: { type: 'string', validate: (s: string) => /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0 },
};

const FORMAT_TEXT: Record<string, string> = {
  'date-time': 'a date-time in RFC 3339 form, e.g. 2024-05-01T12:00:00Z',
  date: 'a date like 2024-05-01',
  int32: 'a 32-bit integer',
  int64: 'an integer of at most 53 bits',
  byte: 'base64 text',
};

export class Validator {
  private readonly registry: KindRegistry;
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(registry: KindRegistry) {
    this.registry = registry;
    this.ajv = new Ajv({ allErrors: true, verbose: true, strict: false, validateFormats: true });
    for (const [name, f] of Object.entries(FORMATS)) this.ajv.addFormat(name, f);
    const seen = new Set<string>();
    for (const k of registry.all()) collectFormats(k.schema, seen);
    for (const name of seen) if (!(name in FORMATS)) this.ajv.addFormat(name, true);
  }

  /** The kind `obj` claims to be, when the registry knows it. */
  kindOf(obj: unknown): KindInfo | undefined {
    return isObject(obj) && typeof obj.kind === 'string' ? this.registry.byKind(obj.kind) : undefined;
  }

  /** Every problem with `obj` as a stored object of its kind; empty when it is valid. */
  validate(obj: unknown, opts: ValidateOptions = {}): FieldError[] {
    const errors = this.collect(obj, opts).filter(
      (e) => e.reason !== 'FieldValueUnknown' || (opts.fieldValidation ?? 'Strict') === 'Strict',
    );
    return errors.map(({ path, reason, message }) => ({ path, reason, message }));
  }

  /** Paths of fields the schema does not know (metadata included), e.g. `spec.x`. */
  unknownFields(obj: unknown, opts: Pick<ValidateOptions, 'subresource'> = {}): string[] {
    return this.collect(obj, opts)
      .filter((e) => e.reason === 'FieldValueUnknown')
      .map((e) => e.path);
  }

  /** Removes unknown fields in place (as the apiserver prunes them); returns their paths. */
  pruneUnknownFields(obj: unknown, opts: Pick<ValidateOptions, 'subresource'> = {}): string[] {
    const unknown = this.collect(obj, opts).filter((e) => e.reason === 'FieldValueUnknown');
    for (const e of unknown) {
      let parent: any = obj;
      for (const seg of e.segments.slice(0, -1)) parent = parent?.[seg];
      if (isObject(parent)) delete parent[e.segments[e.segments.length - 1] as string];
    }
    return unknown.map((e) => e.path);
  }

  /** Fills in the CRD `default`s where a field is absent, as the apiserver does; returns `obj`. */
  applyDefaults<T>(obj: T): T {
    if (!isObject(obj) || typeof obj.kind !== 'string') return obj;
    const info = this.registry.byKind(obj.kind);
    if (!info) return obj;
    for (const part of ['spec', 'status']) {
      const schema = info.schema.properties?.[part];
      if (schema && isObject(obj[part])) walkSchema(schema, obj[part], [part], defaultNode);
    }
    return obj;
  }

  private collect(obj: unknown, opts: ValidateOptions): LocatedFieldError[] {
    if (!isObject(obj)) {
      return [
        err(
          [],
          'FieldValueTypeInvalid',
          `an object must be a mapping with apiVersion, kind, metadata and spec; got ${describeValue(obj)}`,
        ),
      ];
    }
    const out: LocatedFieldError[] = [];
    if (obj.apiVersion === undefined) {
      out.push(err(['apiVersion'], 'FieldValueRequired', `Required value: must be ${API_VERSION}`));
    } else if (obj.apiVersion !== API_VERSION) {
      out.push(
        err(
          ['apiVersion'],
          'FieldValueNotSupported',
          `must be ${API_VERSION}; got ${describeValue(obj.apiVersion)}`,
        ),
      );
    }
    const kinds = this.registry.all().map((k) => k.kind);
    if (obj.kind === undefined || obj.kind === '') {
      out.push(err(['kind'], 'FieldValueRequired', `Required value: must be one of ${kinds.join(', ')}`));
      return out;
    }
    const info = typeof obj.kind === 'string' ? this.registry.byKind(obj.kind) : undefined;
    if (!info) {
      out.push(
        err(
          ['kind'],
          'FieldValueNotSupported',
          `must be one of ${kinds.join(', ')}; got ${describeValue(obj.kind)}`,
        ),
      );
      return out;
    }
    const variant: Variant = opts.subresource === 'status' ? 'status' : 'main';
    const validate = this.compile(info, variant);
    validate(obj);
    out.push(...translateAjvErrors(validate.errors ?? [], obj));
    out.push(...metadataErrors(info, obj.metadata, opts, out));
    const part = variant === 'status' ? 'status' : 'spec';
    const schema = info.schema.properties?.[part];
    if (schema && obj[part] !== undefined) {
      walkSchema(schema, obj[part], [part], (node, value, segs) =>
        out.push(...listTypeErrors(node, value, segs)),
      );
    }
    return dedupe(out);
  }

  private compile(info: KindInfo, variant: Variant): ValidateFunction {
    const key = `${info.kind}/${variant}`;
    let fn = this.compiled.get(key);
    if (!fn) {
      fn = this.ajv.compile(rootSchema(info, variant));
      this.compiled.set(key, fn);
    }
    return fn;
  }
}

/** The kind's schema for ajv: ObjectMeta for metadata, and the part a write does not touch left open. */
function rootSchema(info: KindInfo, variant: Variant): SchemaNode {
  const root = toAjvSchema(info.schema);
  const crdName = info.schema.properties?.metadata?.properties?.name ?? {};
  const meta = toAjvSchema({
    ...OBJECT_META,
    properties: { ...OBJECT_META.properties, name: { ...OBJECT_META.properties.name, ...crdName } },
  });
  const open = {};
  const properties = { ...root.properties, metadata: meta, [variant === 'status' ? 'spec' : 'status']: open };
  const required = (root.required ?? []).filter((r: string) => variant !== 'status' || r !== 'spec');
  return { ...root, properties, required: [...new Set(['metadata', ...required])] };
}

/** OpenAPI v3 + Kubernetes extensions → JSON Schema ajv understands, objects closed to unknown fields. */
function toAjvSchema(node: SchemaNode): SchemaNode {
  const out: SchemaNode = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-') || k === 'nullable' || k === 'example' || k === 'externalDocs')
      continue;
    if (k === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(v as SchemaNode).map(([p, s]) => [p, toAjvSchema(s)]),
      );
    } else if (k === 'items' || k === 'not' || (k === 'additionalProperties' && typeof v === 'object')) {
      out[k] = toAjvSchema(v);
    } else if (k === 'allOf' || k === 'anyOf' || k === 'oneOf') {
      out[k] = (v as SchemaNode[]).map(toAjvSchema);
    } else if (k === 'exclusiveMinimum' || k === 'exclusiveMaximum') {
      if (v === true) out[k] = node[k === 'exclusiveMinimum' ? 'minimum' : 'maximum'];
    } else {
      out[k] = v;
    }
  }
  if (node.exclusiveMinimum === true) delete out.minimum;
  if (node.exclusiveMaximum === true) delete out.maximum;
  if (node['x-kubernetes-int-or-string'] === true) out.type = ['integer', 'string'];
  if (node.nullable === true && out.type !== undefined) {
    out.type = [...(Array.isArray(out.type) ? out.type : [out.type]), 'null'];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  if (
    node.type === 'object' &&
    node.additionalProperties === undefined &&
    node['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

function translateAjvErrors(errors: ErrorObject<string, any, any>[], root: unknown): LocatedFieldError[] {
  const out: LocatedFieldError[] = [];
  for (const e of errors) {
    // A failed oneOf/anyOf also reports each branch's failure; the composite error says it better.
    if (/\/(oneOf|anyOf)\/\d+\//.test(e.schemaPath)) continue;
    const segs = segmentsOf(root, e.instancePath);
    const p: Record<string, any> = e.params;
    switch (e.keyword) {
      case 'required': {
        const description = e.parentSchema?.properties?.[p.missingProperty]?.description;
        out.push(
          err(
            [...segs, p.missingProperty],
            'FieldValueRequired',
            `Required value${description ? `: ${description}` : ''}`,
          ),
        );
        break;
      }
      case 'additionalProperties': {
        const at = [...segs, p.additionalProperty];
        out.push(err(at, 'FieldValueUnknown', `unknown field "${formatFieldPath(at)}"`));
        break;
      }
      case 'enum':
        out.push(
          err(
            segs,
            'FieldValueNotSupported',
            `must be one of ${e.schema.map(String).join(', ')}; got ${describeValue(e.data)}`,
          ),
        );
        break;
      case 'type': {
        const types: string[] = Array.isArray(e.schema) ? e.schema : [e.schema];
        out.push(
          err(
            segs,
            'FieldValueTypeInvalid',
            `must be ${types.map((t) => TYPE_TEXT[t] ?? t).join(' or ')}; got ${describeValue(e.data)}${typeHint(types, e.data)}`,
          ),
        );
        break;
      }
      case 'maxLength':
        out.push(
          err(
            segs,
            'FieldValueTooLong',
            `must have at most ${p.limit} characters; got ${(e.data as string | unknown[]).length}`,
          ),
        );
        break;
      case 'maxItems':
        out.push(
          err(
            segs,
            'FieldValueTooLong',
            `must have at most ${p.limit} items; got ${(e.data as string | unknown[]).length}`,
          ),
        );
        break;
      case 'maxProperties':
        out.push(
          err(
            segs,
            'FieldValueTooLong',
            `must have at most ${p.limit} entries; got ${Object.keys(e.data as object).length}`,
          ),
        );
        break;
      case 'minLength':
        out.push(err(segs, 'FieldValueInvalid', `must have at least ${plural(p.limit, 'character')}`));
        break;
      case 'minItems':
        out.push(err(segs, 'FieldValueInvalid', `must have at least ${plural(p.limit, 'item')}`));
        break;
      case 'minProperties':
        out.push(err(segs, 'FieldValueInvalid', `must have at least ${plural(p.limit, 'entry', 'entries')}`));
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        out.push(
          err(segs, 'FieldValueInvalid', `must be ${p.comparison} ${p.limit}; got ${describeValue(e.data)}`),
        );
        break;
      case 'pattern': {
        const text = PATTERN_TEXT[p.pattern];
        const want = text ? `be ${text}` : `match the regular expression ${p.pattern}`;
        out.push(err(segs, 'FieldValueInvalid', `must ${want}; got ${describeValue(e.data)}`));
        break;
      }
      case 'format': {
        const text = FORMAT_TEXT[p.format] ?? `in format ${p.format}`;
        out.push(err(segs, 'FieldValueInvalid', `must be ${text}; got ${describeValue(e.data)}`));
        break;
      }
      case 'oneOf':
      case 'anyOf':
        out.push(oneOfError(e, segs));
        break;
      default:
        out.push(
          err(segs, 'FieldValueInvalid', `${e.message ?? 'is invalid'}; got ${describeValue(e.data)}`),
        );
    }
  }
  return out;
}

/** `oneOf: [{required: [url]}, {required: [path]}]` means "exactly one of url or path". */
function oneOfError(e: ErrorObject<string, any, any>, segs: PathSegment[]): LocatedFieldError {
  const branches: SchemaNode[] = e.schema as SchemaNode[];
  const onlyRequired = branches.every((b) => Object.keys(b).length === 1 && Array.isArray(b.required));
  if (!onlyRequired || !isObject(e.data)) {
    return err(
      segs,
      'FieldValueInvalid',
      `does not match any of the allowed forms; got ${describeValue(e.data)}`,
    );
  }
  const names = branches.map((b) => b.required.join(' and '));
  const alternatives = orList(names);
  const set = names.filter((_, i) => branches[i].required.every((r: string) => r in (e.data as object)));
  if (set.length === 0)
    return err(segs, 'FieldValueRequired', `Required value: must set exactly one of ${alternatives}`);
  return err(segs, 'FieldValueForbidden', `may set only one of ${alternatives}; got ${set.join(' and ')}`);
}

/** Checks of ObjectMeta the schema cannot express (name syntax, scope, label and annotation keys). */
function metadataErrors(
  info: KindInfo,
  meta: unknown,
  opts: ValidateOptions,
  already: LocatedFieldError[],
): LocatedFieldError[] {
  if (!isObject(meta)) return [];
  const out: LocatedFieldError[] = [];
  const flagged = (path: string) => already.some((e) => e.path === path);
  const { name, generateName, namespace } = meta;
  if (name === undefined || name === '') {
    if (opts.forUpdate || typeof generateName !== 'string' || generateName === '') {
      out.push(
        err(
          ['metadata', 'name'],
          'FieldValueRequired',
          `Required value: every ${info.kind} needs a name (${DNS1123_SUBDOMAIN_TEXT})`,
        ),
      );
    }
  } else if (typeof name === 'string' && !flagged('metadata.name') && !DNS1123_SUBDOMAIN.test(name)) {
    out.push(
      err(
        ['metadata', 'name'],
        'FieldValueInvalid',
        `must be ${DNS1123_SUBDOMAIN_TEXT}; got ${describeValue(name)}`,
      ),
    );
  }
  if (typeof generateName === 'string' && generateName !== '' && !GENERATE_NAME.test(generateName)) {
    out.push(
      err(
        ['metadata', 'generateName'],
        'FieldValueInvalid',
        `must be the start of ${DNS1123_SUBDOMAIN_TEXT}; got ${describeValue(generateName)}`,
      ),
    );
  }
  if (!info.namespaced) {
    if (namespace !== undefined && namespace !== '') {
      out.push(
        err(
          ['metadata', 'namespace'],
          'FieldValueForbidden',
          `${info.kind} is cluster-scoped and has no namespace; remove metadata.namespace`,
        ),
      );
    }
  } else if (typeof namespace === 'string' && namespace !== '' && !DNS1123_LABEL.test(namespace)) {
    out.push(
      err(
        ['metadata', 'namespace'],
        'FieldValueInvalid',
        `must be ${DNS1123_LABEL_TEXT}; got ${describeValue(namespace)}`,
      ),
    );
  }
  if (isObject(meta.labels)) {
    for (const [key, value] of Object.entries(meta.labels)) {
      const at: PathSegment[] = ['metadata', 'labels', key];
      const keyProblem = qualifiedNameProblem(key);
      if (keyProblem)
        out.push(err(at, 'FieldValueInvalid', `label key ${describeValue(key)}: ${keyProblem}`));
      if (typeof value === 'string' && !isLabelValue(value)) {
        out.push(
          err(
            at,
            'FieldValueInvalid',
            `label value must be empty or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit; got ${describeValue(value)}`,
          ),
        );
      }
    }
  }
  if (isObject(meta.annotations)) {
    let bytes = 0;
    for (const [key, value] of Object.entries(meta.annotations)) {
      const keyProblem = qualifiedNameProblem(key);
      if (keyProblem) {
        out.push(
          err(
            ['metadata', 'annotations', key],
            'FieldValueInvalid',
            `annotation key ${describeValue(key)}: ${keyProblem}`,
          ),
        );
      }
      bytes += Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
    }
    if (bytes > ANNOTATIONS_MAX_BYTES) {
      out.push(
        err(
          ['metadata', 'annotations'],
          'FieldValueTooLong',
          `annotations must total at most ${ANNOTATIONS_MAX_BYTES} bytes; got ${bytes}`,
        ),
      );
    }
  }
  if (Array.isArray(meta.finalizers)) {
    meta.finalizers.forEach((f: unknown, i: number) => {
      const problem = typeof f === 'string' ? qualifiedNameProblem(f) : undefined;
      if (problem)
        out.push(
          err(
            ['metadata', 'finalizers', i],
            'FieldValueInvalid',
            `finalizer ${describeValue(f)}: ${problem}`,
          ),
        );
    });
  }
  if (Array.isArray(meta.ownerReferences)) {
    const controllers = meta.ownerReferences.filter((r: any) => isObject(r) && r.controller === true);
    if (controllers.length > 1) {
      out.push(
        err(
          ['metadata', 'ownerReferences'],
          'FieldValueInvalid',
          'at most one owner reference may have controller: true',
        ),
      );
    }
  }
  return out;
}

/** x-kubernetes-list-type set/map: no two items (or map keys) alike. */
function listTypeErrors(node: SchemaNode, value: unknown, segs: PathSegment[]): LocatedFieldError[] {
  const listType = node['x-kubernetes-list-type'];
  if ((listType !== 'set' && listType !== 'map') || !Array.isArray(value)) return [];
  const keys: string[] = node['x-kubernetes-list-map-keys'] ?? [];
  const seen = new Map<string, number>();
  const out: LocatedFieldError[] = [];
  value.forEach((item, i) => {
    let id: string;
    let what: string;
    if (listType === 'set') {
      id = JSON.stringify(item);
      what = `value ${describeValue(item)}`;
    } else {
      if (!isObject(item)) return;
      const tuple = keys.map((k) => item[k] ?? node.items?.properties?.[k]?.default);
      id = JSON.stringify(tuple);
      what = keys.map((k, j) => `${k} ${describeValue(tuple[j])}`).join(', ');
    }
    const first = seen.get(id);
    if (first === undefined) seen.set(id, i);
    else {
      out.push(
        err(
          [...segs, i],
          'FieldValueDuplicate',
          `Duplicate value: ${what} is already used by ${formatFieldPath([...segs, first])}`,
        ),
      );
    }
  });
  return out;
}

type Visit = (node: SchemaNode, value: unknown, segs: PathSegment[]) => void;

/** Calls `visit` for each schema node that has a value, parents before children. */
function walkSchema(node: SchemaNode, value: unknown, segs: PathSegment[], visit: Visit): void {
  visit(node, value, segs);
  if (Array.isArray(value)) {
    if (isObject(node.items)) {
      for (const [i, v] of value.entries()) walkSchema(node.items, v, [...segs, i], visit);
    }
  } else if (isObject(value)) {
    if (isObject(node.properties)) {
      for (const [name, sub] of Object.entries(node.properties as Record<string, SchemaNode>)) {
        if (value[name] !== undefined) walkSchema(sub, value[name], [...segs, name], visit);
      }
    } else if (isObject(node.additionalProperties)) {
      for (const [k, v] of Object.entries(value))
        walkSchema(node.additionalProperties, v, [...segs, k], visit);
    }
  }
}

const defaultNode: Visit = (node, value) => {
  if (!isObject(value) || !isObject(node.properties)) return;
  for (const [name, sub] of Object.entries(node.properties as Record<string, SchemaNode>)) {
    if (sub.default === undefined) continue;
    if (value[name] === undefined || (value[name] === null && sub.nullable !== true)) {
      value[name] = structuredClone(sub.default);
    }
  }
};

function collectFormats(node: unknown, into: Set<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) collectFormats(n, into);
  } else if (isObject(node)) {
    if (typeof node.format === 'string') into.add(node.format);
    for (const v of Object.values(node)) collectFormats(v, into);
  }
}

/** `/spec/ports/0/port` → `['spec', 'ports', 0, 'port']`, indices numeric where the data is a list. */
function segmentsOf(root: unknown, instancePath: string): PathSegment[] {
  if (instancePath === '') return [];
  const segs: PathSegment[] = [];
  let cur: any = root;
  for (const raw of instancePath.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const seg: PathSegment = Array.isArray(cur) ? Number(key) : key;
    segs.push(seg);
    cur = cur?.[seg];
  }
  return segs;
}

function err(segments: PathSegment[], reason: FieldErrorReason, message: string): LocatedFieldError {
  return { path: formatFieldPath(segments), segments, reason, message };
}

function dedupe(errors: LocatedFieldError[]): LocatedFieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const id = `${e.path}\0${e.reason}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** How a value looks in a message: `string "abc"`, `integer 3`, `a list`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (typeof v === 'number') return `${Number.isInteger(v) ? 'integer' : 'number'} ${v}`;
  return `${typeof v} ${String(v)}`;
}

/** The usual YAML slip: `port: "8080"` where a number is wanted, `memory: 512` where text is. */
function typeHint(types: string[], data: unknown): string {
  if (typeof data === 'string' && data.trim() !== '' && !Number.isNaN(Number(data))) {
    if (types.includes('integer') || types.includes('number')) return ' (remove the quotes)';
  }
  if (
    (typeof data === 'number' || typeof data === 'boolean') &&
    types.length === 1 &&
    types[0] === 'string'
  ) {
    return ` (quote it: "${String(data)}")`;
  }
  return '';
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function orList(items: string[]): string {
  return items.length <= 1
    ? items.join('')
    : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
