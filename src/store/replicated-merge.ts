// Merging a row received from a peer into the store (SqliteStore.applyReplicatedBatch runs this for each
// row, inside its transaction): last writer wins per part (metadata+spec, status), each part checked first —
// its clock (../hlc.ts), and with an authority its writer's proof, binding and permission (row-authority.ts) —
// so a refused part leaves this host's clock and row as they were while the other part may still apply.

import type { XObject } from '../model/object.ts';
import { BadRequestError, type ErrorObjectRef, RowRefusedError } from './errors.ts';
import { ClockDriftError, HlcFormatError, type HybridLogicalClock, parseHlc } from './hlc.ts';
import type { RowAuthority, WriterBindings } from './row-authority.ts';
import type { Proof, StatusBase } from './row-proof.ts';
import { type ChangeEvent, previousOf } from './watch-hub.ts';

/** One row as replication ships it: the latest version of an object, or its tombstone, with the
 *  version of each of its two parts. */
export interface ReplicatedRow {
  kind: string;
  /** '' for cluster-scoped kinds. */
  namespace: string;
  name: string;
  /** The main part is a deletion: the row is a tombstone. */
  deleted: boolean;
  /** Version of the main part (metadata + spec, and deletion): hybrid-logical-clock timestamp… */
  hlc: string;
  /** …and the host that wrote it. */
  writer: string;
  /** Version of the status part; create writes it too, so it is '' only for rows of schema 1. */
  statusHlc: string;
  statusWriter: string;
  /** The main version's proof (row-proof.ts): its writer's signature; '' when unsigned. */
  proof: Proof;
  /** The status version's proof; '' when unsigned. */
  statusProof: Proof;
  /** For a verdict (another host's status over the owner's): the owner's status it was written over. */
  statusBase?: StatusBase;
  /** The object without resourceVersion (a per-host counter). For a tombstone: its last state. */
  object: XObject;
}

/** What applyReplicated() did with a row. */
export interface ApplyResult {
  /** Some part of the received row was newer than ours and is now stored. */
  changed: boolean;
  /** Some part of ours is newer than the received row's: the sender is behind on this object. */
  localNewer: boolean;
  /** The watch event it caused, if any (a tombstone for an object never seen causes none). */
  event?: 'ADDED' | 'MODIFIED' | 'DELETED';
}

/** One row as changesSince() walks it: a ReplicatedRow with this host's revision of the change. */
export interface ChangeRecord extends ReplicatedRow {
  revision: number;
  /** The object with metadata.resourceVersion = revision. */
  object: XObject;
}

/** The versions of one row, without its body: what anti-entropy digests and compares. */
export interface RowVersion {
  kind: string;
  namespace: string;
  name: string;
  deleted: boolean;
  hlc: string;
  statusHlc: string;
}

/** What applyReplicatedBatch() did with one row: its result (and the part it refused, if one was), or why
 *  none of it was applied. */
export type ApplyOutcome =
  | { ok: true; result: ApplyResult; refused?: RowRefusedError }
  | { ok: false; error: Error };

/** A row as the objects table holds it. */
export interface VersionedRow {
  revision: number;
  deleted: number;
  body: string;
  hlc: string;
  writer: string;
  status_hlc: string;
  status_writer: string;
  proof: string;
  status_proof: string;
  status_base: string;
}

/** What a merge uses of the store, inside its transaction. */
export interface MergeContext {
  authority: RowAuthority | undefined;
  bindings: WriterBindings;
  clock: HybridLogicalClock;
  /** Whether a row of `kind` last written at `hlc` has outlived its kind's TTL (see expireObjects). */
  expired(kind: string, hlc: string): boolean;
  /** The row's key, after checking the row describes itself (throws BadRequestError). */
  checkReplicated(row: ReplicatedRow): ErrorObjectRef;
  readRow(key: ErrorObjectRef): VersionedRow | undefined;
  writeRow(
    key: ErrorObjectRef,
    revision: number,
    deleted: boolean,
    main: PartVersion,
    status: PartVersion,
    body: string,
  ): void;
  /** Replaces the proofs of a stored row (same versions). */
  setProofs(key: ErrorObjectRef, proof: string, statusProof: string): void;
}

/** Inside a transaction: merges one received row (see applyReplicated), storing a change under
 *  `nextRevision`. Returns the revision written (none if nothing was), the event to publish once the
 *  transaction commits, and the part it refused (the other part may still have been taken). */
export function mergeReplicated(
  ctx: MergeContext,
  row: ReplicatedRow,
  nextRevision: number,
): { result: ApplyResult; revision?: number; event?: ChangeEvent; refused?: RowRefusedError } {
  const key = ctx.checkReplicated(row);
  const local = ctx.readRow(key);
  // Expired here already (see SqliteStore.expireObjects): taking it would resurrect it.
  if (ctx.expired(row.kind, row.hlc))
    return { result: { changed: false, localNewer: !!local && local.hlc > row.hlc } };
  const incoming = withoutRevision(row.object);
  const stored = local && (JSON.parse(local.body) as XObject);
  const localNewer = local !== undefined && (local.hlc > row.hlc || local.status_hlc > row.statusHlc);
  let mainNewer = !local || row.hlc > local.hlc;
  let statusNewer = (!local || row.statusHlc > local.status_hlc) && !(ctx.authority && row.statusHlc === '');
  if (!mainNewer && !statusNewer) {
    if (local) adoptProofs(ctx, key, row, local, stored!);
    return { result: { changed: false, localNewer } };
  }
  // Every check before anything moves: a refused part leaves this host's clock and row as they were.
  let refused: RowRefusedError | undefined;
  const check = (part: 'main' | 'status', fn: () => void): boolean => {
    try {
      fn();
      return true;
    } catch (err) {
      refused ??= asRefusal(err, part);
      return false;
    }
  };
  const a = ctx.authority;
  mainNewer &&= check('main', () => {
    ctx.clock.check(row.hlc);
    a?.checkMain(key, row, ctx.bindings);
  });
  if (!local && !mainNewer) throw refused!; // nothing to hang a status on
  const { status: _, ...main } = mainNewer || !stored ? incoming : stored;
  statusNewer &&= check('status', () => {
    if (row.statusHlc) ctx.clock.check(row.statusHlc);
    a?.checkStatus(key, row, main as XObject, ctx.bindings);
  });
  if (!mainNewer && !statusNewer) throw refused!;
  if (mainNewer) ctx.clock.receive(row.hlc);
  if (statusNewer && row.statusHlc) ctx.clock.receive(row.statusHlc);
  const status = statusNewer ? incoming.status : stored?.status;
  const merged: XObject = status === undefined ? main : { ...main, status };
  const deleted = mainNewer || !local ? row.deleted : local.deleted === 1;
  const body = JSON.stringify(merged);
  const mainVersion: PartVersion =
    mainNewer || !local
      ? { hlc: row.hlc, writer: row.writer, proof: row.proof }
      : { hlc: local.hlc, writer: local.writer, proof: local.proof };
  const statusVersion: PartVersion =
    statusNewer || !local
      ? statusNewer
        ? {
            hlc: row.statusHlc,
            writer: row.statusWriter,
            proof: row.statusProof,
            base: baseText(row.statusBase),
          }
        : { hlc: '', writer: '', proof: '' }
      : {
          hlc: local.status_hlc,
          writer: local.status_writer,
          proof: local.status_proof,
          base: local.status_base,
        };
  const sameContent = local !== undefined && local.deleted === Number(deleted) && local.body === body;
  // Only the versions moved (the same change arrived from another path): keep the revision.
  const revision = sameContent ? local.revision : nextRevision;
  ctx.writeRow(key, revision, deleted, mainVersion, statusVersion, body);
  if (sameContent) return { result: { changed: true, localNewer }, revision, refused };
  const wasLive = local !== undefined && local.deleted === 0;
  const type = wasLive ? (deleted ? 'DELETED' : 'MODIFIED') : deleted ? undefined : 'ADDED';
  const result: ApplyResult = { changed: true, localNewer, event: type };
  if (!type) return { result, revision, refused };
  const event: ChangeEvent = {
    revision,
    type,
    kind: key.kind,
    object: toObject(body, revision),
    previous: wasLive ? previousOf(JSON.parse(local.body) as XObject) : undefined,
  };
  return { result, revision, event, refused };
}

/** The same versions as ours arrived signed while ours are not (a store from before signing): keep
 *  the proofs that check out. */
function adoptProofs(
  ctx: MergeContext,
  key: ErrorObjectRef,
  row: ReplicatedRow,
  local: VersionedRow,
  stored: XObject,
): void {
  const a = ctx.authority;
  if (!a) return;
  const main = row.hlc === local.hlc && !local.proof && row.proof !== '';
  const status = row.statusHlc === local.status_hlc && !local.status_proof && row.statusProof !== '';
  if (!main && !status) return;
  const mine = { ...row, object: stored, statusBase: undefined };
  const proof =
    main && tryCheck(() => a.checkMain(key, { ...mine, proof: row.proof }, ctx.bindings))
      ? row.proof
      : local.proof;
  const statusProof =
    status &&
    tryCheck(() => a.checkStatus(key, { ...mine, statusProof: row.statusProof }, stored, ctx.bindings))
      ? row.statusProof
      : local.status_proof;
  if (proof !== local.proof || statusProof !== local.status_proof) {
    ctx.setProofs(key, proof, statusProof);
  }
}

/** One part's version as a row stores it; `base` is the StatusBase JSON of a verdict ('' otherwise). */
export interface PartVersion {
  hlc: string;
  writer: string;
  proof: string;
  base?: string;
}

export function baseText(base: StatusBase | undefined): string {
  return base
    ? JSON.stringify({ hlc: base.hlc, writer: base.writer, proof: base.proof, volatile: base.volatile })
    : '';
}

export function parseBase(text: string): StatusBase | undefined {
  return text ? (JSON.parse(text) as StatusBase) : undefined;
}

export function storedStatus(row: VersionedRow) {
  const status = row.deleted ? undefined : (JSON.parse(row.body) as XObject).status;
  return {
    status,
    hlc: row.status_hlc,
    writer: row.status_writer,
    proof: row.status_proof,
    base: parseBase(row.status_base),
  };
}

/** A check's failure as the refusal of one part of a received row. */
function asRefusal(err: unknown, part: 'main' | 'status'): RowRefusedError {
  if (err instanceof RowRefusedError) return err;
  if (err instanceof ClockDriftError) return new RowRefusedError('clock_skew', err.message, part);
  if (err instanceof HlcFormatError) return new RowRefusedError('malformed', err.message, part);
  throw err;
}

function tryCheck(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

/** The object as stored (and as a watch event carries it), with its revision as resourceVersion. */
/** A row's JSON body as the object it holds (rows of a kind hold objects of that kind: the API
 *  validated them before they were written, replication checked them before they were applied). */
export function toObject<T extends XObject = XObject>(body: string, revision: number): T {
  const obj: T = JSON.parse(body);
  obj.metadata.resourceVersion = String(revision);
  return obj;
}

export function withoutRevision(obj: XObject): XObject {
  const { resourceVersion: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/** The key of a replicated row, after checking the row agrees with its object (`keyOf` checks the
 *  object's own key) and its timestamps parse and name their writers. */
export function checkReplicatedRow(
  row: ReplicatedRow,
  keyOf: (obj: XObject) => ErrorObjectRef,
): ErrorObjectRef {
  const where = `replicated row ${row.kind} ${row.namespace ? `${row.namespace}/` : ''}${row.name}`;
  const key = keyOf(row.object);
  if (key.kind !== row.kind || key.namespace !== row.namespace || key.name !== row.name) {
    throw new BadRequestError(
      `${where}: carries ${key.kind} ${key.namespace}/${key.name}; the sending host is faulty`,
    );
  }
  const checkVersion = (hlc: string, writer: string, part: string): void => {
    let parsed: string;
    try {
      parsed = parseHlc(hlc).writer;
    } catch (err) {
      throw new BadRequestError(`${where}: ${part} version: ${(err as Error).message}`);
    }
    if (parsed !== writer) {
      throw new BadRequestError(`${where}: ${part} version ${hlc} names writer ${JSON.stringify(writer)}`);
    }
  };
  checkVersion(row.hlc, row.writer, 'main');
  if (row.statusHlc !== '' || row.statusWriter !== '')
    checkVersion(row.statusHlc, row.statusWriter, 'status');
  return key;
}

/** A stored row as replication ships it, without its object. */
export function toReplicatedRow(key: ErrorObjectRef, r: VersionedRow): Omit<ReplicatedRow, 'object'> {
  const base = parseBase(r.status_base);
  return {
    kind: key.kind,
    namespace: key.namespace,
    name: key.name,
    deleted: r.deleted === 1,
    hlc: r.hlc,
    writer: r.writer,
    statusHlc: r.status_hlc,
    statusWriter: r.status_writer,
    proof: r.proof,
    statusProof: r.status_proof,
    ...(base ? { statusBase: base } : {}),
  };
}
