// The Kubernetes rules of a write, apart from how objects are stored: what a create, update, status
// update or delete does to the object stored now (uid, creationTimestamp, generation, status
// subresource, finalizers, preconditions, conflicts), decided as a Plan the store then carries out; the
// checks of an object's key (names as DNS labels/subdomains) and of its size.

import { randomUUID } from 'node:crypto';
import { isDns1123Label, isDns1123Subdomain } from '../model/names.ts';
import type { ObjectMeta, XObject } from '../model/object.ts';
import {
  AlreadyExistsError,
  BadRequestError,
  ConflictError,
  type ErrorObjectRef,
  NotFoundError,
  ObjectTooLargeError,
} from './errors.ts';
import { jsonEqual } from './json-value.ts';
import { MAX_OBJECT_BYTES } from './limits.ts';
import { withoutRevision } from './replicated-merge.ts';
import type { DeleteOptions, UpdateOptions } from './store.ts';

/** Which version a write moves: create writes both parts, a status write only the status part,
 *  every other write the main part. */
export type Part = 'main' | 'status' | 'both';

/** What a write decided to do, computed from the object currently stored. */
export type Plan =
  | { op: 'none'; result: XObject }
  | { op: 'put'; part: Part; type: 'ADDED' | 'MODIFIED'; object: XObject; previous?: XObject }
  | { op: 'delete'; part: Part; object: XObject; previous: XObject };

/** The key of an object a client sent, after checking it names one. `namespaceOf` gives the stored
 *  namespace of a kind ('' for cluster-scoped kinds, 'default' when a namespaced object names none). */
export function objectKeyOf(
  obj: XObject,
  namespaceOf: (kind: string, namespace: string | undefined) => string,
): ErrorObjectRef {
  if (obj === null || typeof obj !== 'object' || typeof obj.kind !== 'string' || obj.kind === '') {
    throw new BadRequestError('the object has no kind: set "kind" (and "apiVersion")');
  }
  const name = obj.metadata?.name;
  if (typeof name !== 'string' || !isDns1123Subdomain(name)) {
    throw new BadRequestError(
      `${obj.kind} metadata.name ${JSON.stringify(name)} is not valid: expected at most 253 lower-case ` +
        "letters, digits, '-' and '.', starting and ending with a letter or digit",
    );
  }
  const namespace = namespaceOf(obj.kind, obj.metadata.namespace);
  if (namespace && !isDns1123Label(namespace)) {
    throw new BadRequestError(
      `${obj.kind} "${name}" metadata.namespace ${JSON.stringify(namespace)} is not valid: expected at most 63 ` +
        "lower-case letters, digits and '-', starting and ending with a letter or digit",
    );
  }
  return { kind: obj.kind, namespace, name };
}

/** A create: uid, creationTimestamp and generation 1 assigned; no status (status subresource). */
export function planCreate(obj: XObject, key: ErrorObjectRef, existing: XObject | undefined): Plan {
  if (existing) throw new AlreadyExistsError(key);
  const metadata: ObjectMeta = {
    ...obj.metadata,
    namespace: key.namespace || undefined,
    uid: randomUUID(),
    creationTimestamp: timestamp(),
    generation: 1,
    resourceVersion: undefined,
    deletionTimestamp: undefined,
  };
  // The kinds have a status subresource: status is not taken on create, as in Kubernetes.
  return { op: 'put', part: 'both', type: 'ADDED', object: { ...obj, metadata, status: undefined } };
}

/** An update (or, with subresource 'status', a status update) of the stored object. */
export function planUpdate(
  obj: XObject,
  key: ErrorObjectRef,
  existing: XObject | undefined,
  opts: UpdateOptions,
): Plan {
  if (!existing) throw new NotFoundError(key);
  const wanted = obj.metadata.resourceVersion;
  if (wanted && wanted !== existing.metadata.resourceVersion) throw new ConflictError(key);
  const old = withoutRevision(existing);
  let next: XObject;
  if (opts.subresource === 'status') {
    next = { ...old, status: obj.status };
  } else {
    const specChanged = !jsonEqual(obj.spec, old.spec);
    const metadata: ObjectMeta = {
      ...obj.metadata,
      namespace: key.namespace || undefined,
      uid: old.metadata.uid,
      creationTimestamp: old.metadata.creationTimestamp,
      generation: (old.metadata.generation ?? 1) + (specChanged ? 1 : 0),
      deletionTimestamp: old.metadata.deletionTimestamp,
      resourceVersion: undefined,
    };
    next = { ...obj, metadata, status: old.status };
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) {
      return { op: 'delete', part: 'main', object: next, previous: existing };
    }
  }
  if (jsonEqual(next, old)) return { op: 'none', result: existing };
  const part = opts.subresource === 'status' ? 'status' : 'main';
  return { op: 'put', part, type: 'MODIFIED', object: next, previous: existing };
}

/** A delete: gone at once without finalizers, else marked with deletionTimestamp (generation bumped). */
export function planDelete(ref: ErrorObjectRef, existing: XObject | undefined, opts: DeleteOptions): Plan {
  if (!existing) throw new NotFoundError(ref);
  const pre = opts.preconditions;
  if (pre?.uid && pre.uid !== existing.metadata.uid) {
    throw new ConflictError(
      ref,
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`,
    );
  }
  if (pre?.resourceVersion && pre.resourceVersion !== existing.metadata.resourceVersion) {
    throw new ConflictError(
      ref,
      `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ` +
        `ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
    );
  }
  const old = withoutRevision(existing);
  if (!old.metadata.finalizers?.length) {
    return { op: 'delete', part: 'main', object: old, previous: existing };
  }
  if (old.metadata.deletionTimestamp) return { op: 'none', result: existing };
  const metadata: ObjectMeta = {
    ...old.metadata,
    deletionTimestamp: timestamp(),
    generation: (old.metadata.generation ?? 1) + 1,
  };
  return { op: 'put', part: 'main', type: 'MODIFIED', object: { ...old, metadata }, previous: existing };
}

/** What a dry run returns: the object as it would be stored, with the revision it has now. */
export function dryRunResult<T extends XObject>(plan: Exclude<Plan, { op: 'none' }>): T {
  const obj: T = JSON.parse(JSON.stringify(plan.object));
  const rv = plan.previous?.metadata.resourceVersion;
  if (rv) obj.metadata.resourceVersion = rv;
  else delete obj.metadata.resourceVersion;
  return obj;
}

/** The one object size limit (limits.ts), on what would be stored. */
export function checkSize(key: ErrorObjectRef, body: string): void {
  // Each UTF-16 unit is at most 3 bytes of UTF-8: short bodies need no counting.
  if (body.length * 3 <= MAX_OBJECT_BYTES) return;
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_OBJECT_BYTES) throw new ObjectTooLargeError(key, bytes, MAX_OBJECT_BYTES);
}

/** RFC 3339 at second precision, as Kubernetes writes timestamps. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}
