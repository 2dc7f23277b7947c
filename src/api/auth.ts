// Who is calling, and may they do this. Every API request except the health probes carries
// `Authorization: Bearer <token>`. Tokens are kept as sha256 hashes in DATA_DIR/tokens.json;
// on first start the daemon creates an admin token and writes it to DATA_DIR/admin.token (0600).
// A token names a Principal; `authorize` decides per verb and resource. Today there is the admin
// (everything) and instance-scoped tokens (a service inside a domain: read its own instance, and
// in its status only register endpoints and report its health — `scopedStatusChange` checks the
// written status field by field — and discover the services of its namespace); later issues add users,
// groups and permissions here.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { ADMIN_TOKEN_FILE } from '../model/data-dir.ts';
import { SERVICE_INSTANCE } from '../model/kinds.ts';
import type { Condition } from '../model/object.ts';
import {
  type Endpoint,
  REGISTERED_SOURCE,
  SERVICE_HEALTHY,
  type ServiceInstanceStatus,
} from '../model/service-instance.ts';
import { jsonEqual } from '../store/json-value.ts';
import { errors } from './status-errors.ts';

export const ADMIN_GROUP = 'system:masters';
/** The discover endpoint as a resource of the xenos.io group (`get`), for authorize(). */
export const DISCOVER_RESOURCE = 'discover';

export interface Principal {
  name: string;
  groups: string[];
  /** Set for a token that may only touch one ServiceInstance (a service inside its domain). */
  scope?: { namespace: string; instance: string };
}

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface ResourceAttributes {
  /** API group ('' for core v1, e.g. events). */
  group: string;
  /** Plural resource name, e.g. `serviceinstances`. */
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export interface TokenRecord {
  /** hex sha256 of the token. */
  sha256: string;
  principal: Principal;
  createdAt: string;
}

interface TokenFile {
  tokens: TokenRecord[];
}

function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** The token hashes a daemon accepts, persisted in DATA_DIR/tokens.json. */
export class TokenAuthenticator {
  readonly #file: string;
  #records: { hash: Buffer; record: TokenRecord }[] = [];

  constructor(init: { dataDir: string }) {
    this.#file = join(init.dataDir, 'tokens.json');
    if (existsSync(this.#file)) {
      const parsed = JSON.parse(readFileSync(this.#file, 'utf8')) as TokenFile;
      this.#records = parsed.tokens.map((record) => ({ hash: Buffer.from(record.sha256, 'hex'), record }));
    }
  }

  /** Make sure an admin token exists; on first start create it and write it to DATA_DIR/admin.token. */
  ensureAdminToken(dataDir: string): void {
    const path = join(dataDir, ADMIN_TOKEN_FILE);
    if (existsSync(path)) {
      const token = readFileSync(path, 'utf8').trim();
      if (!this.authenticateToken(token)) this.add(token, { name: 'admin', groups: [ADMIN_GROUP] });
      return;
    }
    const token = newToken();
    this.add(token, { name: 'admin', groups: [ADMIN_GROUP] });
    writeFileSync(path, token + '\n', { mode: 0o600 });
    chmodSync(path, 0o600);
  }

  /** Accept `token` for `principal` from now on (persisted). */
  add(token: string, principal: Principal): void {
    const record: TokenRecord = {
      sha256: sha256(token).toString('hex'),
      principal,
      createdAt: new Date().toISOString(),
    };
    this.#records.push({ hash: Buffer.from(record.sha256, 'hex'), record });
    this.#save();
  }

  /** Stop accepting every token of this principal name (e.g. when an instance is deleted). */
  revoke(name: string): void {
    this.#records = this.#records.filter((r) => r.record.principal.name !== name);
    this.#save();
  }

  #save(): void {
    const tmp = this.#file + '.tmp';
    const body: TokenFile = { tokens: this.#records.map((r) => r.record) };
    writeFileSync(tmp, JSON.stringify(body, null, 2), { mode: 0o600 });
    renameSync(tmp, this.#file);
  }

  /** The principal a token belongs to; compares hashes in constant time and visits every record. */
  authenticateToken(token: string): Principal | undefined {
    const h = sha256(token);
    let found: Principal | undefined;
    for (const r of this.#records) {
      if (timingSafeEqual(h, r.hash) && !found) found = r.record.principal;
    }
    return found;
  }

  /** From an HTTP Authorization header value. */
  authenticate(header: string | undefined): Principal | undefined {
    if (!header) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? this.authenticateToken(m[1]) : undefined;
  }
}

/** May `principal` do `verb` on the resource? Admins may do everything; an instance-scoped token
 *  may read its own ServiceInstance and write its status — within that status only its own part, which
 *  the resource handlers check with `scopedStatusChange` — and record events in its namespace. */
export function authorize(principal: Principal, verb: Verb, attrs: ResourceAttributes): boolean {
  if (principal.groups.includes(ADMIN_GROUP)) return true;
  const scope = principal.scope;
  if (!scope) return false;
  if (attrs.namespace !== scope.namespace) return false;
  if (
    attrs.group === SERVICE_INSTANCE.group &&
    attrs.resource === SERVICE_INSTANCE.plural &&
    attrs.name === scope.instance
  ) {
    // list/watch count when pinned to its name (fieldSelector=metadata.name=<instance>).
    if (verb === 'get' || verb === 'list' || verb === 'watch') return true;
    return attrs.subresource === 'status' && (verb === 'update' || verb === 'patch');
  }
  if (attrs.group === '' && attrs.resource === 'events') return verb === 'create';
  // Services find each other: discover in its own namespace (what DNS gives a Kubernetes pod).
  if (attrs.group === SERVICE_INSTANCE.group && attrs.resource === DISCOVER_RESOURCE) return verb === 'get';
  return false;
}

/**
 * What an instance-scoped principal (the notice-board token of a service inside a domain) changes in
 * its instance's status beyond what it may: only `status.endpoints` entries with `source: registered`
 * and the `ServiceHealthy` condition are its own; everything else is its host's. Returns the field
 * paths it would change otherwise (empty: allowed). Endpoints are matched by name, conditions by type;
 * their order does not count.
 */
export function scopedStatusChange(
  current: ServiceInstanceStatus | undefined,
  next: ServiceInstanceStatus | undefined,
): string[] {
  const cur = (current ?? {}) as Record<string, unknown>;
  const nxt = (next ?? {}) as Record<string, unknown>;
  const changed: string[] = [];
  for (const key of new Set([...Object.keys(cur), ...Object.keys(nxt)])) {
    if (key === 'endpoints' || key === 'conditions') continue;
    if (!jsonEqual(cur[key], nxt[key])) changed.push(`status.${key}`);
  }
  const hostEndpoints = (s: Record<string, unknown>) =>
    byKey(
      ((s.endpoints as Endpoint[] | undefined) ?? []).filter((e) => e?.source !== REGISTERED_SOURCE),
      (e) => String(e?.name),
    );
  for (const name of differing(hostEndpoints(cur), hostEndpoints(nxt)))
    changed.push(`status.endpoints[name=${name}]`);
  const hostConditions = (s: Record<string, unknown>) =>
    byKey(
      ((s.conditions as Condition[] | undefined) ?? []).filter((c) => c?.type !== SERVICE_HEALTHY),
      (c) => String(c?.type),
    );
  for (const type of differing(hostConditions(cur), hostConditions(nxt)))
    changed.push(`status.conditions[type=${type}]`);
  return changed;
}

/** Entries by key; a repeated key keeps every entry, so a duplicate counts as a difference. */
function byKey<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) map.set(key(item), [...(map.get(key(item)) ?? []), item]);
  return map;
}

function differing<T>(a: Map<string, T[]>, b: Map<string, T[]>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => !jsonEqual(a.get(k), b.get(k)));
}

/** Where in a status an instance-scoped principal may write at all (scopedStatusChange decides, entry by
 *  entry, after the patch is applied). */
const SCOPED_STATUS_FIELDS = ['endpoints', 'conditions'];

/**
 * What a patch from an instance-scoped principal to its instance's status touches outside the parts it
 * may write (see scopedStatusChange), found before the patch is applied: JSON patch pointers (`path`
 * and `from`; a `test` reads and may point anywhere), or merge/apply field paths. Envelope fields that
 * name the object are allowed; so is metadata.resourceVersion, the precondition. Empty: go on.
 */
export function scopedPatchProblems(type: 'json' | 'merge' | 'apply', patch: unknown): string[] {
  if (type === 'json') {
    if (!Array.isArray(patch)) return [];
    const allowed = (p: unknown) =>
      typeof p !== 'string' ||
      SCOPED_STATUS_FIELDS.some((f) => p === `/status/${f}` || p.startsWith(`/status/${f}/`));
    const out: string[] = [];
    for (const op of patch as { op?: unknown; path?: unknown; from?: unknown }[]) {
      if (typeof op !== 'object' || op === null || op.op === 'test') continue;
      for (const p of [op.path, op.from]) if (!allowed(p)) out.push(String(p));
    }
    return out;
  }
  if (!isMapping(patch)) return [];
  const envelope = type === 'apply' ? ['apiVersion', 'kind'] : [];
  const meta = type === 'apply' ? ['name', 'namespace', 'resourceVersion'] : ['resourceVersion'];
  const out: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (envelope.includes(key)) continue;
    const inner = key === 'status' ? SCOPED_STATUS_FIELDS : key === 'metadata' ? meta : undefined;
    if (!inner || !isMapping(value)) out.push(key);
    else for (const k of Object.keys(value)) if (!inner.includes(k)) out.push(`${key}.${k}`);
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An admin-only route's gate: a caller without the admin token gets 403 saying what needs it (`needs`,
 *  e.g. "image uploads need the admin token"); its request body is drained so the connection stays usable. */
export function requireAdmin(req: IncomingMessage, principal: Principal, path: string, needs: string): void {
  if (principal.groups.includes(ADMIN_GROUP)) return;
  req.resume();
  throw errors.forbidden(`User "${principal.name}" cannot use ${path}: ${needs}`);
}
