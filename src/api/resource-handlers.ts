// The verbs on one resource: list, get, create, update, patch (merge, JSON and apply), delete,
// and the status subresource. Each turns an HTTP request into store calls and answers with the
// object, a List, a Table or a Status. Validation runs before anything is written (incoming-object.ts: the
// envelope, generateName, the schema); with `dryRun=All` the store computes the result and persists
// nothing. Writes go through the store's group commit: the writes of concurrent requests share one
// transaction and one fsync, and each request is answered only once its write is durable. Hostile input is
// refused before it costs anything (admission.ts: Event rate limits before the body is read, an
// instance-scoped principal's patch checked before it is applied; bodies decoded under the limits of
// input-limits.ts).
// Over 400 lines because it holds one method per verb over the same store, validator and limits; the checks
// of an incoming object (incoming-object.ts) and field ownership (field-managers.ts) are apart.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiResource } from '../model/api-resource.ts';
import type { XObject } from '../model/object.ts';
import { ConflictError } from '../store/errors.ts';
import { type FieldSelector, matchesFields, parseFieldSelector } from '../store/selectors.ts';
import type { ListOptions, Store } from '../store/store.ts';
import { checkImmutableSpec, checkScopedPatch, checkScopedStatus, EventRateLimit } from './admission.ts';
import type { Principal } from './auth.ts';
import { BodyDecoder } from './body-decoder.ts';
import { applyConfig, conflictMessage, recordUpdate } from './field-managers.ts';
import { booleanParam, dryRun, integerParam, sendJson, warningHeader } from './http-io.ts';
import {
  admitObject,
  checkNameMatchesUrl,
  incomingObject,
  invalid,
  keepIdentity,
  nameCreated,
  refOf,
} from './incoming-object.ts';
import { MAX_SCOPED_BODY_BYTES } from './input-limits.ts';
import { JsonPatchError, jsonPatch } from './json-patch.ts';
import { MergePatchError, mergePatch } from './merge-patch.ts';
import { asObject, mediaType, OBJECT_MEDIA_TYPES, readBody } from './request-body.ts';
import { scaledObject, scaleProblem, toScale } from './scale-subresource.ts';
import { ApiError, errors, successStatus, toApiError } from './status-errors.ts';
import { parseIncludeObject, toTable, wantsTable } from './table.ts';
import type { Validator } from './validation.ts';

export interface HandlerComponents {
  store: Store;
  validator: Validator;
  /** Decodes bodies, large ones off the API's thread (default: a BodyDecoder of its own). */
  decoder?: BodyDecoder;
}

export interface HandlerInit {
  bodyLimit: number;
  /** Events each principal may create through the API (default EVENT_RATE_LIMIT). */
  eventRateLimit?: { burst: number; perSecond: number };
}

/** One routed request. `namespace` is undefined for cluster-scoped kinds and all-namespace lists. */
export interface ResourceRequest {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  resource: ApiResource;
  namespace?: string;
  name?: string;
  subresource?: 'status';
  principal: Principal;
}

const PATCH_TYPES = [
  'application/merge-patch+json',
  'application/json-patch+json',
  'application/apply-patch+yaml',
];

type Obj = Record<string, any>;

function typed(obj: XObject, resource: ApiResource): XObject {
  return { ...obj, apiVersion: resource.apiVersion, kind: resource.kind };
}

export class ResourceHandlers {
  readonly #store: Store;
  readonly #validator: Validator;
  readonly #bodyLimit: number;
  readonly #eventRate: EventRateLimit;
  readonly #decoder: BodyDecoder;

  constructor(components: HandlerComponents, init: HandlerInit) {
    this.#store = components.store;
    this.#validator = components.validator;
    this.#decoder = components.decoder ?? new BodyDecoder();
    this.#bodyLimit = init.bodyLimit;
    this.#eventRate = new EventRateLimit(init.eventRateLimit);
  }

  /** Store-level options for a list or watch, and the field requirements the store cannot apply. */
  selection(r: ResourceRequest): { opts: ListOptions; filter: FieldSelector } {
    const labelSelector = r.query.get('labelSelector') ?? undefined;
    const fieldSelector = r.query.get('fieldSelector') ?? '';
    const parsed = parseFieldSelector(fieldSelector, r.resource.selectableFields);
    const storeCan = parsed.every((f) => f.field === 'metadata.name' || f.field === 'metadata.namespace');
    return {
      opts: {
        namespace: r.namespace,
        labelSelector: labelSelector || undefined,
        fieldSelector: storeCan && fieldSelector ? fieldSelector : undefined,
      },
      filter: storeCan ? [] : parsed,
    };
  }

  list(r: ResourceRequest): void {
    const { opts, filter } = this.selection(r);
    const limit = integerParam(r.query, 'limit');
    const cont = r.query.get('continue') || undefined;
    let result: ReturnType<Store['list']>;
    if (filter.length === 0) {
      result = this.#store.list(r.resource.kind, { ...opts, limit: limit || undefined, continue: cont });
    } else {
      // Filtering in memory: page after filtering, without continue tokens (small kinds: Events).
      const all = this.#store.list(r.resource.kind, opts);
      const items = all.items.filter((o) => matchesFields(filter, o));
      result = { items: limit ? items.slice(0, limit) : items, resourceVersion: all.resourceVersion };
    }
    const meta = {
      resourceVersion: result.resourceVersion,
      ...(result.continue ? { continue: result.continue } : {}),
    };
    if (wantsTable(r.req.headers.accept)) {
      sendJson(
        r.res,
        200,
        toTable(r.resource, result.items, parseIncludeObject(r.query.get('includeObject')), meta),
      );
      return;
    }
    sendJson(r.res, 200, {
      apiVersion: r.resource.apiVersion,
      kind: r.resource.listKind,
      metadata: meta,
      items: result.items.map((o) => typed(o, r.resource)),
    });
  }

  #current(r: ResourceRequest): XObject {
    const obj = this.#store.get({ kind: r.resource.kind, namespace: r.namespace ?? '', name: r.name! });
    if (!obj) throw errors.notFound(refOf(r));
    return obj;
  }

  #respond(r: ResourceRequest, code: number, obj: XObject, warnings: string[] = []): void {
    const headers = warningHeader(warnings);
    if (wantsTable(r.req.headers.accept)) {
      const table = toTable(r.resource, [obj], parseIncludeObject(r.query.get('includeObject')), {
        resourceVersion: obj.metadata.resourceVersion,
      });
      sendJson(r.res, code, table, headers);
      return;
    }
    sendJson(r.res, code, typed(obj, r.resource), headers);
  }

  get(r: ResourceRequest): void {
    this.#respond(r, 200, this.#current(r));
  }

  async create(r: ResourceRequest): Promise<void> {
    if (!r.resource.crd) this.#eventRate.admit(r.principal);
    const obj = incomingObject(r, await this.#readObject(r));
    nameCreated(r, obj);
    obj.metadata.managedFields = recordUpdate(undefined, obj, fieldManager(r));
    const warnings = admitObject(this.#validator, r, obj, false);
    const isDryRun = dryRun(r.query.getAll('dryRun'));
    const created = await this.#write(isDryRun, () => this.#store.create(obj, { dryRun: isDryRun }));
    this.#respond(r, 201, created, warnings);
  }

  async update(r: ResourceRequest): Promise<void> {
    const obj = incomingObject(r, await this.#readObject(r));
    checkNameMatchesUrl(r, obj);
    const current = this.#current(r);
    const candidate = r.subresource
      ? {
          ...structuredClone(current),
          status: obj.status,
          metadata: { ...current.metadata, resourceVersion: obj.metadata.resourceVersion },
        }
      : obj;
    await this.#writeUpdate(r, current, candidate as XObject, dryRun(r.query.getAll('dryRun')));
  }

  async patch(r: ResourceRequest): Promise<void> {
    const type = mediaType(r.req.headers['content-type']);
    if (!PATCH_TYPES.includes(type)) throw errors.unsupportedMediaType(type, PATCH_TYPES);
    const body = await this.#readBody(r);
    const isDryRun = dryRun(r.query.getAll('dryRun'));
    if (type === 'application/apply-patch+yaml')
      return this.#apply(r, asObject(await this.#decoder.decode(body, 'yaml')), isDryRun);
    const patch = await this.#decoder.decode(body, 'json');
    if (
      type === 'application/merge-patch+json' &&
      (typeof patch !== 'object' || patch === null || Array.isArray(patch))
    ) {
      throw errors.badRequest('a merge patch must be a JSON object');
    }
    checkScopedPatch(r, type === 'application/json-patch+json' ? 'json' : 'merge', patch);
    const pinned =
      type === 'application/merge-patch+json' && (patch as Obj).metadata?.resourceVersion !== undefined;
    // Without a resourceVersion in the patch, a patch applies to whatever is current: retry lost races.
    for (let attempt = 0; ; attempt++) {
      const current = this.#current(r);
      let patched: Obj;
      try {
        patched =
          type === 'application/json-patch+json'
            ? (jsonPatch(current, patch) as Obj)
            : (mergePatch(structuredClone(current), patch) as Obj);
      } catch (err) {
        if (err instanceof JsonPatchError)
          throw errors.badRequest(`the JSON patch could not be applied: ${err.message}`);
        if (err instanceof MergePatchError)
          throw errors.badRequest(`the merge patch could not be applied: ${err.message}`, [
            { reason: 'FieldValueForbidden', field: err.path, message: err.message },
          ]);
        throw err;
      }
      if (typeof patched?.metadata !== 'object' || patched.metadata === null) {
        throw errors.badRequest('the patch removed metadata');
      }
      keepIdentity(current, patched);
      if (!pinned && type !== 'application/json-patch+json')
        patched.metadata.resourceVersion = current.metadata.resourceVersion;
      try {
        await this.#writeUpdate(r, current, patched as XObject, isDryRun);
        return;
      } catch (err) {
        if (err instanceof ConflictError && !pinned && attempt < 5) continue;
        throw err;
      }
    }
  }

  /** Server-side apply (field-managers.ts): the applied configuration's fields become the manager's,
   *  those it applied before and no longer does are removed, and changing a field another manager owns
   *  is a 409 conflict unless `?force=true`. Creates the object when it does not exist. */
  async #apply(r: ResourceRequest, applied: Obj, isDryRun: boolean): Promise<void> {
    checkScopedPatch(r, 'apply', applied);
    const manager = r.query.get('fieldManager');
    if (!manager) throw errors.badRequest('fieldManager is required for apply requests');
    const force = booleanParam(r.query, 'force');
    const obj = incomingObject(r, applied);
    checkNameMatchesUrl(r, obj);
    delete obj.metadata.managedFields;
    for (let attempt = 0; ; attempt++) {
      const current = this.#store.get({ kind: r.resource.kind, namespace: r.namespace ?? '', name: r.name! });
      if (!current && r.subresource) throw errors.notFound(refOf(r));
      const result = applyConfig(current, obj, fieldFor(manager), force);
      if (!('object' in result)) {
        const message = conflictMessage(result.conflicts, obj.apiVersion);
        const causes = result.conflicts.map((c) => ({
          reason: 'FieldManagerConflict',
          field: c.field,
          message: `conflict with "${c.manager}" using ${obj.apiVersion}`,
        }));
        throw errors.applyConflict(refOf(r), message, causes);
      }
      try {
        if (!current) {
          const warnings = admitObject(this.#validator, r, result.object, false);
          const created = await this.#write(isDryRun, () =>
            this.#store.create(result.object, { dryRun: isDryRun }),
          );
          this.#respond(r, 201, created, warnings);
          return;
        }
        const patched = result.object as Obj;
        keepIdentity(current, patched);
        patched.metadata.resourceVersion = current.metadata.resourceVersion;
        await this.#writeUpdate(r, current, patched as XObject, isDryRun, true);
        return;
      } catch (err) {
        if (err instanceof ApiError || attempt >= 5) throw err;
        const api = toApiError(err);
        if (api.code === 409) continue; // lost a race (create or update): apply again on what is there now
        throw err;
      }
    }
  }

  async delete(r: ResourceRequest): Promise<void> {
    let opts: Obj = {};
    const body = await this.#readBody(r);
    if (body.length > 0 && body.toString('utf8').trim() !== '') {
      const format = OBJECT_MEDIA_TYPES[mediaType(r.req.headers['content-type'])] ?? 'json';
      opts = asObject(await this.#decoder.decode(body, format));
    }
    const dryRunValues = [...r.query.getAll('dryRun'), ...(Array.isArray(opts.dryRun) ? opts.dryRun : [])];
    const pre = opts.preconditions as { uid?: string; resourceVersion?: string } | undefined;
    const key = { kind: r.resource.kind, namespace: r.namespace ?? '', name: r.name! };
    const isDryRun = dryRun(dryRunValues);
    const result = await this.#write(isDryRun, () =>
      this.#store.delete(key, { dryRun: isDryRun, preconditions: pre }),
    );
    if (result.metadata.deletionTimestamp && (result.metadata.finalizers?.length ?? 0) > 0) {
      // Finalizers keep it until their controllers are done: answer with the object, as Kubernetes does.
      this.#respond(r, 200, result);
      return;
    }
    sendJson(
      r.res,
      200,
      successStatus({
        name: r.name,
        group: r.resource.group,
        kind: r.resource.plural,
        uid: result.metadata.uid,
      }),
    );
  }

  async #readObject(r: ResourceRequest): Promise<Obj> {
    // No Content-Type (kubectl create --raw, curl -d) is taken as JSON, as the Kubernetes API does.
    const type = mediaType(r.req.headers['content-type']) || 'application/json';
    const format = OBJECT_MEDIA_TYPES[type];
    if (!format) throw errors.unsupportedMediaType(type, Object.keys(OBJECT_MEDIA_TYPES));
    return asObject(await this.#decoder.decode(await this.#readBody(r), format));
  }

  /** The body, within the caller's limit: an instance-scoped token gets MAX_SCOPED_BODY_BYTES. */
  #readBody(r: ResourceRequest): Promise<Buffer> {
    if (!r.principal.scope) return readBody(r.req, this.#bodyLimit);
    const limit = Math.min(this.#bodyLimit, MAX_SCOPED_BODY_BYTES);
    return readBody(
      r.req,
      limit,
      ` for an instance-scoped token; send a patch of only the status entries that change`,
    );
  }

  /** Writes `next` over `current` (PUT, patch, apply): admitted as an update, checked against an
   *  instance-scoped principal's part of the status, stored, answered 200 with the stored object. */
  async #writeUpdate(
    r: ResourceRequest,
    current: XObject,
    next: XObject,
    isDryRun: boolean,
    applied = false,
  ): Promise<void> {
    const { updated, warnings } = await this.#update(r, current, next, isDryRun, applied);
    this.#respond(r, 200, updated, warnings);
  }

  async #update(
    r: ResourceRequest,
    current: XObject,
    next: XObject,
    isDryRun: boolean,
    /** A server-side apply: `next` carries its managedFields already. */
    applied = false,
  ): Promise<{ updated: XObject; warnings: string[] }> {
    if (!applied && !r.subresource)
      next.metadata.managedFields = recordUpdate(current, next, fieldManager(r));
    else if (r.subresource) next.metadata.managedFields = current.metadata.managedFields;
    const warnings = admitObject(this.#validator, r, next, true);
    checkScopedStatus(r, current, next);
    checkImmutableSpec(r, current, next);
    const updated = await this.#write(isDryRun, () =>
      this.#store.update(next, { dryRun: isDryRun, subresource: r.subresource }),
    );
    return { updated, warnings };
  }

  /** `<plural>/<name>/scale` (scale-subresource.ts): GET, PUT of a Scale, or a merge or JSON patch of one. */
  async scale(r: ResourceRequest, method: 'GET' | 'PUT' | 'PATCH'): Promise<void> {
    const paths = r.resource.scale!;
    const current = this.#current(r);
    if (method === 'GET') return sendJson(r.res, 200, toScale(current, paths));
    let wanted: Obj;
    if (method === 'PUT') wanted = await this.#readObject(r);
    else {
      const type = mediaType(r.req.headers['content-type']);
      const types = ['application/merge-patch+json', 'application/json-patch+json'];
      if (!types.includes(type)) throw errors.unsupportedMediaType(type, types);
      const patch = await this.#decoder.decode(await this.#readBody(r), 'json');
      try {
        wanted = (
          type === 'application/json-patch+json'
            ? jsonPatch(toScale(current, paths), patch)
            : mergePatch(toScale(current, paths), patch)
        ) as Obj;
      } catch (err) {
        if (err instanceof JsonPatchError || err instanceof MergePatchError)
          throw errors.badRequest(`the patch could not be applied to the Scale: ${err.message}`);
        throw err;
      }
    }
    const problem = scaleProblem(wanted);
    if (problem) throw invalid(r, [{ reason: 'FieldValueInvalid', ...problem }]);
    const isDryRun = dryRun(r.query.getAll('dryRun'));
    const { updated, warnings } = await this.#update(
      r,
      current,
      scaledObject(current, wanted, paths),
      isDryRun,
    );
    sendJson(r.res, 200, toScale(updated, paths), warningHeader(warnings));
  }

  /** A write through the store's group commit (answered once its batch is durable, sharing one fsync
   *  with the writes of other requests); a dry run persists nothing and needs none. */
  #write<T>(isDryRun: boolean, write: () => T): Promise<T> {
    return isDryRun ? Promise.resolve(write()) : this.#store.groupCommit(write);
  }
}

/** The manager a write is recorded for: `?fieldManager=`, else the client's User-Agent up to its first
 *  `/` (as Kubernetes does), else "unknown". At most 128 printable characters. */
function fieldManager(r: ResourceRequest): string {
  const asked = r.query.get('fieldManager');
  if (asked) return fieldFor(asked);
  const agent = (r.req.headers['user-agent'] ?? '').split('/')[0].trim();
  return agent ? agent.slice(0, 128) : 'unknown';
}

function fieldFor(manager: string): string {
  if (manager.length > 128 || !/^[\x20-\x7e]+$/.test(manager))
    throw errors.badRequest('fieldManager must be at most 128 printable ASCII characters');
  return manager;
}
