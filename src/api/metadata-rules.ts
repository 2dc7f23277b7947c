// The checks of an object's metadata that a CRD schema cannot express, as the apiserver makes them:
// ObjectMeta's own schema, name and generateName syntax, namespace against the kind's scope, label and
// annotation keys and values, the annotations' total size, finalizer names.

import type { SchemaNode } from '../model/crd.ts';
import {
  DNS1123_LABEL,
  DNS1123_LABEL_TEXT,
  DNS1123_SUBDOMAIN,
  DNS1123_SUBDOMAIN_TEXT,
  isLabelValue,
  qualifiedNameProblem,
} from '../model/names.ts';
import { describeValue, err, isObject, type LocatedFieldError } from './field-errors.ts';
import type { PathSegment } from './field-path.ts';
import type { KindInfo } from './kinds.ts';

const GENERATE_NAME = /^[a-z0-9]([-a-z0-9.]*)?$/;
const ANNOTATIONS_MAX_BYTES = 256 * 1024;

/** The Kubernetes ObjectMeta, which CRDs cannot describe: what clients and the server may set. */
export const OBJECT_META: SchemaNode = {
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

/** Checks of ObjectMeta the schema cannot express (name syntax, scope, label and annotation keys). */
export function metadataErrors(
  info: KindInfo,
  meta: unknown,
  /** An update: metadata.name is required even when generateName is set. */
  opts: { forUpdate?: boolean },
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
