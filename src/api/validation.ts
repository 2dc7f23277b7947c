// Validation and defaulting of Xenos objects, compiled from the CRDs' openAPIV3Schema (no second
// schema is written by hand): ajv checks types, enums, patterns and limits; this file adds what the
// Kubernetes apiserver adds on top (the object envelope and ObjectMeta rules, unknown-field
// detection, list-type uniqueness, schema defaults) and turns every failure into a FieldError that
// says where (`spec.ports[0].port`) and what was expected.

// The parts: field-errors.ts (the error shape and wording), ajv-errors.ts (ajv's errors in the
// apiserver's words), metadata-rules.ts (ObjectMeta), schema-walk.ts (list types, defaults).

import { Ajv, type ValidateFunction } from 'ajv';
import type { SchemaNode } from '../model/crd.ts';
import { API_VERSION } from '../model/kinds.ts';
import { translateAjvErrors } from './ajv-errors.ts';
import {
  dedupe,
  describeValue,
  err,
  type FieldError,
  isObject,
  type LocatedFieldError,
} from './field-errors.ts';
import type { KindInfo, KindRegistry } from './kinds.ts';
import { metadataErrors, OBJECT_META } from './metadata-rules.ts';
import { collectFormats, defaultNode, listTypeErrors, walkSchema } from './schema-walk.ts';

export { describeValue, type FieldError, type FieldErrorReason } from './field-errors.ts';

export interface ValidateOptions {
  /** An update (the object exists): metadata.name is required even when generateName is set. */
  forUpdate?: boolean;
  /** `status`: a status write — validates `.status` and ignores `.spec`. Otherwise `.status` is ignored. */
  subresource?: 'status';
  /** Unknown fields: Strict (default) reports them as errors; Warn and Ignore leave them out (use
   *  unknownFields() to warn, pruneUnknownFields() to drop them as the apiserver does). */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
}

type Variant = 'main' | 'status';

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

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

  /** Compiles the validators of `kinds` now, not at their first write: ajv takes ≈ 150 ms for a
   *  ServiceInstance, which would otherwise land on the first create — and on every create queued behind
   *  it when a deployment or a script creates many at once. */
  warm(kinds: readonly string[]): void {
    for (const kind of kinds) {
      const info = this.registry.byKind(kind);
      if (info) this.compile(info, 'main');
    }
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
