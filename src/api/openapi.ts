// OpenAPI v3 documents generated from the CRD schemas: /openapi/v3 (the index) and
// /openapi/v3/apis/<group>/<version>. kubectl needs them for `apply`/`diff`/`explain`: each path
// carries `x-kubernetes-group-version-kind` and declares the `fieldValidation` query parameter (so
// kubectl leaves validation to the server). PATCH lists json, merge and apply patch bodies but not
// strategic merge, so kubectl sends merge patches for these kinds.

import { createHash } from 'node:crypto';
import type { ApiResource } from '../model/api-resource.ts';
import type { ApiResources } from './api-resources.ts';

type Doc = Record<string, unknown>;

function schemaName(r: ApiResource): string {
  return `${r.group.split('.').reverse().join('.')}.${r.version}.${r.kind}`;
}

function gvk(r: ApiResource) {
  return { group: r.group, version: r.version, kind: r.kind };
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function jsonResponse(schema: unknown) {
  return { content: { 'application/json': { schema }, 'application/yaml': { schema } } };
}

function queryParam(name: string, description: string) {
  return { name, in: 'query', description, schema: { type: 'string' }, uniqueItems: true };
}

const DRY_RUN = queryParam('dryRun', 'When present, modifications are not persisted. Valid value: All.');
const FIELD_MANAGER = queryParam('fieldManager', 'Name of the actor making the change.');
const FIELD_VALIDATION = queryParam(
  'fieldValidation',
  'How to handle unknown fields in the body: Ignore, Warn or Strict (the default).',
);
const LIST_PARAMS = [
  queryParam('labelSelector', 'A selector to restrict the list of returned objects by their labels.'),
  queryParam('fieldSelector', 'A selector to restrict the list of returned objects by their fields.'),
  { name: 'limit', in: 'query', schema: { type: 'integer' }, uniqueItems: true },
  queryParam('continue', 'The continue token of the previous page.'),
  queryParam('resourceVersion', 'Watch from this resourceVersion.'),
  { name: 'watch', in: 'query', schema: { type: 'boolean' }, uniqueItems: true },
  { name: 'timeoutSeconds', in: 'query', schema: { type: 'integer' }, uniqueItems: true },
  { name: 'allowWatchBookmarks', in: 'query', schema: { type: 'boolean' }, uniqueItems: true },
];

function pathParam(name: string) {
  return { name, in: 'path', required: true, schema: { type: 'string' }, uniqueItems: true };
}

function op(r: ApiResource, action: string, id: string, extra: Doc = {}): Doc {
  return {
    tags: [r.group],
    operationId: `${action}${r.kind}${id}`,
    responses: { '200': { description: 'OK', ...jsonResponse(ref(schemaName(r))) } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk(r),
    ...extra,
  };
}

function body(r: ApiResource) {
  return { requestBody: { required: true, content: { '*/*': { schema: ref(schemaName(r)) } } } };
}

const PATCH_BODY = {
  requestBody: {
    required: true,
    content: {
      'application/json-patch+json': { schema: { type: 'object' } },
      'application/merge-patch+json': { schema: { type: 'object' } },
      'application/apply-patch+yaml': { schema: { type: 'object' } },
    },
  },
};

function itemPaths(r: ApiResource, base: string, suffix: string): Doc {
  const tag = suffix ? 'Status' : '';
  const params = { parameters: [pathParam('name'), ...(r.namespaced ? [pathParam('namespace')] : [])] };
  const item: Doc = {
    ...params,
    get: op(r, 'get', tag),
    put: op(r, 'put', tag, { ...body(r), parameters: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION] }),
    patch: op(r, 'patch', tag, {
      ...PATCH_BODY,
      parameters: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, queryParam('force', 'Force apply requests.')],
    }),
  };
  if (!suffix) item.delete = op(r, 'delete', '', { parameters: [DRY_RUN] });
  return { [`${base}/{name}${suffix}`]: item };
}

function resourcePaths(r: ApiResource): Doc {
  const prefix = `/apis/${r.group}/${r.version}`;
  const base = r.namespaced ? `${prefix}/namespaces/{namespace}/${r.plural}` : `${prefix}/${r.plural}`;
  const paths: Doc = {
    [base]: {
      parameters: r.namespaced ? [pathParam('namespace')] : [],
      get: op(r, 'list', '', { parameters: LIST_PARAMS }),
      post: op(r, 'post', '', { ...body(r), parameters: [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION] }),
    },
    ...itemPaths(r, base, ''),
  };
  if (r.statusSubresource) Object.assign(paths, itemPaths(r, base, '/status'));
  if (r.namespaced)
    paths[`${prefix}/${r.plural}`] = { get: op(r, 'list', 'ForAllNamespaces', { parameters: LIST_PARAMS }) };
  return paths;
}

function componentSchema(r: ApiResource): Doc {
  const schema = (r.schema ?? { type: 'object' }) as Doc;
  return { ...schema, 'x-kubernetes-group-version-kind': [gvk(r)] };
}

export class OpenApiDocs {
  readonly #docs = new Map<string, { json: string; hash: string }>();

  constructor(resources: ApiResources) {
    for (const { group, version } of resources.groupVersions()) {
      const rs = resources.inGroupVersion(group, version);
      const doc = {
        openapi: '3.0.0',
        info: { title: 'Xenos', version: `${group}/${version}` },
        paths: Object.assign({}, ...rs.map(resourcePaths)),
        components: { schemas: Object.fromEntries(rs.map((r) => [schemaName(r), componentSchema(r)])) },
      };
      const json = JSON.stringify(doc);
      const hash = createHash('sha512').update(json).digest('hex').slice(0, 64).toUpperCase();
      this.#docs.set(`apis/${group}/${version}`, { json, hash });
    }
  }

  /** The /openapi/v3 index. */
  index() {
    return {
      paths: Object.fromEntries(
        [...this.#docs].map(([path, d]) => [
          path,
          { serverRelativeURL: `/openapi/v3/${path}?hash=${d.hash}` },
        ]),
      ),
    };
  }

  /** A group-version document as JSON text, by `apis/<group>/<version>`. */
  document(path: string): string | undefined {
    return this.#docs.get(path)?.json;
  }
}
