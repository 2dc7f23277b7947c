// What the object a request writes (create, update, apply) must be before the store sees it: its envelope
// checked against the URL and filled in from it (apiVersion, kind, namespace; the name, where the URL has
// one), a name made from generateName when a create has none, the identity a patch may not change, and
// admission — for a custom resource its schema (unknown fields per fieldValidation, defaults, validation),
// for an Event its own rules. Every refusal is the Status the Kubernetes API answers: 400, or 422 naming
// the fields.

import { randomBytes } from 'node:crypto';
import type { ApiResource } from '../model/api-resource.ts';
import type { XObject } from '../model/object.ts';
import { validateEvent } from './events.ts';
import { type FieldValidation, fieldValidation } from './http-io.ts';
import { type ApiError, errors, type ResourceRef, type StatusCause } from './status-errors.ts';
import type { Validator } from './validation.ts';

/** The parts of a routed request these checks look at (a ResourceRequest has them). */
export interface WriteTarget {
  query: URLSearchParams;
  resource: ApiResource;
  namespace?: string;
  name?: string;
  subresource?: 'status';
}

type Obj = Record<string, any>;

/** The object the request names (`name`, or the URL's), for a Status. */
export function refOf(r: WriteTarget, name?: string): ResourceRef {
  return { plural: r.resource.plural, group: r.resource.group, kind: r.resource.kind, name: name ?? r.name };
}

/** 422 Invalid, naming each field that is wrong. */
export function invalid(r: WriteTarget, causes: StatusCause[], name?: string): ApiError {
  return errors.invalid(refOf(r, name), causes);
}

/** Check the envelope of a body against the URL and fill in what the URL implies. */
export function incomingObject(r: WriteTarget, raw: Obj): XObject {
  const { apiVersion, kind } = r.resource;
  if (raw.apiVersion !== undefined && raw.apiVersion !== apiVersion) {
    throw errors.badRequest(
      `the API version in the data (${raw.apiVersion}) does not match the expected API version (${apiVersion})`,
    );
  }
  if (raw.kind !== undefined && raw.kind !== kind) {
    throw errors.badRequest(`the kind in the data (${raw.kind}) does not match the expected kind (${kind})`);
  }
  const metadata = raw.metadata ?? {};
  if (typeof metadata !== 'object' || Array.isArray(metadata))
    throw errors.badRequest('metadata must be an object');
  if (r.resource.namespaced) {
    if (metadata.namespace && metadata.namespace !== r.namespace) {
      throw errors.badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    metadata.namespace = r.namespace;
  } else if (metadata.namespace) {
    throw errors.badRequest(`${kind} is cluster-scoped: remove metadata.namespace ("${metadata.namespace}")`);
  }
  return { ...raw, apiVersion, kind, metadata } as XObject;
}

/** A create's name: its own, or its generateName with five random characters added (422 without
 *  either). */
export function nameCreated(r: WriteTarget, obj: XObject): void {
  if (obj.metadata.name) return;
  const gen = (obj.metadata as Obj).generateName;
  if (typeof gen !== 'string' || gen === '') {
    throw invalid(r, [
      {
        reason: 'FieldValueRequired',
        field: 'metadata.name',
        message: 'Required value: name or generateName is required',
      },
    ]);
  }
  obj.metadata.name = gen + randomBytes(3).toString('hex').slice(0, 5);
}

/** PUT and apply name the object twice, in the body and on the URL: they must agree. */
export function checkNameMatchesUrl(r: WriteTarget, obj: XObject): void {
  if (obj.metadata.name !== r.name) {
    throw errors.badRequest(
      `the name of the object (${obj.metadata.name}) does not match the name on the URL (${r.name})`,
    );
  }
}

/** A patch may not rename or move an object. */
export function keepIdentity(current: XObject, patched: Obj): void {
  for (const f of ['name', 'namespace', 'uid'] as const) {
    if (patched.metadata[f] !== current.metadata[f] && patched.metadata[f] !== undefined) {
      throw errors.badRequest(
        `metadata.${f} cannot be changed by a patch (from "${current.metadata[f]}" to "${patched.metadata[f]}")`,
      );
    }
    if (current.metadata[f] !== undefined) patched.metadata[f] = current.metadata[f];
  }
}

/** Unknown fields per fieldValidation, then defaults and the schema. Returns warnings to send. */
export function admitObject(
  validator: Validator,
  r: WriteTarget,
  obj: XObject,
  forUpdate: boolean,
): string[] {
  const mode: FieldValidation = fieldValidation(r.query);
  const warnings: string[] = [];
  if (!r.resource.crd) {
    checkEvent(r, obj);
    return warnings;
  }
  const sub = { subresource: r.subresource };
  if (mode === 'Strict') {
    const unknown = validator.unknownFields(obj, sub);
    if (unknown.length > 0) {
      throw errors.badRequest(
        `strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`,
      );
    }
  } else {
    // Warn and Ignore drop unknown fields, as the apiserver prunes them.
    const pruned = validator.pruneUnknownFields(obj, sub);
    if (mode === 'Warn') for (const u of pruned) warnings.push(`unknown field "${u}"`);
  }
  validator.applyDefaults(obj);
  const problems = validator.validate(obj, { ...sub, forUpdate, fieldValidation: 'Ignore' });
  if (problems.length > 0) {
    throw invalid(
      r,
      problems.map((p) => ({ reason: p.reason, field: p.path, message: p.message })),
      obj.metadata.name,
    );
  }
  return warnings;
}

function checkEvent(r: WriteTarget, obj: XObject): void {
  const problems = validateEvent(obj as Obj);
  if (problems.length > 0) {
    throw invalid(
      r,
      problems.map((p) => ({ reason: p.reason, field: p.path, message: p.message })),
      obj.metadata.name,
    );
  }
}
