// Who may write what, as the store enforces it when replication is on: every part version this host writes
// is signed (row-proof.ts), and every part received from a peer is checked before it is merged —
//   1. it is signed, by a valid Ed25519 signature over its statement (`bad_signature`, `unsigned`);
//   2. by the key its writer's name is bound to: a writer name is bound to the first peer id seen signing
//      for it (this host's own name to its own key when the store opens), and a name is never re-bound
//      (`writer_mismatch`) — which is also how two hosts with the same name are told apart;
//   3. the writer may write that part (`not_permitted`): any host writes main parts (users write specs
//      through any host), while the status belongs to the owner the WritePolicy names (src/cluster: a Host's
//      to that host, an instance's to the host it is bound to), except a verdict — a status that differs
//      from one its owner signed only in phase and Ready, which any host may write over the owner's proof.
// A local write that would be refused by peers is refused here first (ForbiddenError), so a host never holds
// a row its peers will not take.

import type { XObject } from '../model/object.ts';
import { type ErrorObjectRef, ForbiddenError, RowRefusedError } from './errors.ts';
import {
  mainHash,
  mainStatement,
  type PartKey,
  type Proof,
  proofSigner,
  type RowSigner,
  type StatusBase,
  statusHalves,
  statusHashes,
  statusStatement,
  verifyProof,
} from './row-proof.ts';

/** Decides which host may write the status of which object (src/cluster implements it for the kinds). */
export interface WritePolicy {
  /** Why `writer` (whose key is `signer`) may not write `status` as the status of `object` (whose main part
   *  is the one stored with it); undefined when it may. */
  statusWriter(input: {
    object: XObject;
    status: unknown;
    writer: string;
    signer: string;
  }): string | undefined;
  /** Why a status whose volatile half is `volatile` ({phase, ready}) is not a verdict any host may write over
   *  its owner's status; undefined when it is one. */
  verdict(kind: string, volatile: { phase: unknown; ready: unknown }): string | undefined;
  /** Whether a main-part write from `before` to `after` moves the status to another owner; the store then
   *  clears the status in the same write, so no status of the old owner outlives its binding. */
  statusOwnerChanged(before: XObject, after: XObject): boolean;
}

/** Where writer names are bound to peer ids (the store keeps them in its database). */
export interface WriterBindings {
  peerOf(writer: string): string | undefined;
  bind(writer: string, peerId: string): void;
}

/** A stored status part, as a local status write sees it. */
export interface StoredStatus {
  status: unknown;
  hlc: string;
  writer: string;
  proof: Proof;
  base: StatusBase | undefined;
}

/** The parts of a received row the checks read. */
export interface ReceivedRow {
  hlc: string;
  writer: string;
  deleted: boolean;
  proof: Proof;
  statusHlc: string;
  statusWriter: string;
  statusProof: Proof;
  statusBase?: StatusBase;
  object: XObject;
}

export interface RowAuthorityComponents {
  signer: RowSigner;
  policy: WritePolicy;
}

export class RowAuthority {
  readonly signer: RowSigner;
  readonly policy: WritePolicy;

  constructor(components: RowAuthorityComponents) {
    this.signer = components.signer;
    this.policy = components.policy;
  }

  get peerId(): string {
    return this.signer.peerId;
  }

  // ---- local writes ------------------------------------------------------------------------

  proveMain(key: PartKey, hlc: string, deleted: boolean, obj: XObject): Proof {
    return this.signer.sign(mainStatement(key, hlc, deleted, mainHash(obj)));
  }

  proveStatus(key: PartKey, hlc: string, status: unknown, base: StatusBase | undefined): Proof {
    return this.signer.sign(statusStatement(key, hlc, statusHashes(status), base));
  }

  /**
   * A status this host (`writer`) is about to write as the status of `object`: undefined when it owns the
   * status, the base to carry when the write is a verdict over the owner's stored status; ForbiddenError
   * otherwise.
   */
  localStatus(
    ref: ErrorObjectRef,
    object: XObject,
    writer: string,
    stored?: StoredStatus,
  ): StatusBase | undefined {
    const status = object.status;
    const why = this.policy.statusWriter({ object, status, writer, signer: this.peerId });
    if (why === undefined) return undefined;
    const volatile = statusHalves(status).volatile as { phase: unknown; ready: unknown };
    if (stored?.proof && statusHashes(stored.status).stable === statusHashes(status).stable) {
      const notVerdict = this.policy.verdict(ref.kind, volatile);
      if (notVerdict === undefined) {
        return (
          stored.base ?? {
            hlc: stored.hlc,
            writer: stored.writer,
            proof: stored.proof,
            volatile: statusHashes(stored.status).volatile,
          }
        );
      }
      throw new ForbiddenError(ref, `${why}; and it is not a verdict another host may write (${notVerdict})`);
    }
    throw new ForbiddenError(ref, why);
  }

  // ---- received rows -----------------------------------------------------------------------

  /** Throws RowRefusedError unless the row's main part is signed by its writer's bound key. */
  checkMain(key: PartKey, row: ReceivedRow, bindings: WriterBindings): void {
    const stmt = mainStatement(key, row.hlc, row.deleted, mainHash(row.object));
    this.checkSigned(stmt, row.proof, row.writer, bindings, 'main');
  }

  /** Throws RowRefusedError unless the row's status part is signed by its writer's bound key and that writer
   *  may write it as the status of `main` (the main part it will be stored with), or it is a verdict over a
   *  status the owner signed. */
  checkStatus(key: PartKey, row: ReceivedRow, main: XObject, bindings: WriterBindings): void {
    const status = row.object.status;
    const hashes = statusHashes(status);
    const signer = this.checkSigned(
      statusStatement(key, row.statusHlc, hashes, row.statusBase),
      row.statusProof,
      row.statusWriter,
      bindings,
      'status',
    );
    const object = { ...main, status } as XObject;
    const why = this.policy.statusWriter({ object, status, writer: row.statusWriter, signer });
    if (why === undefined) return;
    const base = row.statusBase;
    if (!base) throw new RowRefusedError('not_permitted', why, 'status');
    const volatile = statusHalves(status).volatile as { phase: unknown; ready: unknown };
    const notVerdict = this.policy.verdict(key.kind, volatile);
    if (notVerdict !== undefined)
      throw new RowRefusedError('not_permitted', `${why}; not a verdict: ${notVerdict}`, 'status');
    if (!(base.hlc < row.statusHlc)) {
      throw new RowRefusedError(
        'not_permitted',
        `verdict ${row.statusHlc} is not later than its base ${base.hlc}`,
        'status',
      );
    }
    const baseSigner = this.checkSigned(
      statusStatement(key, base.hlc, { stable: hashes.stable, volatile: base.volatile }, undefined),
      base.proof,
      base.writer,
      bindings,
      'status',
      'the base of a verdict',
    );
    const owner = this.policy.statusWriter({ object, status, writer: base.writer, signer: baseSigner });
    if (owner !== undefined)
      throw new RowRefusedError('not_permitted', `the base of a verdict: ${owner}`, 'status');
  }

  /** Verifies `proof` over `stmt` and that its signer is the key `writer` is bound to (binding it on first
   *  sight); returns the signer. */
  private checkSigned(
    stmt: Uint8Array,
    proof: Proof,
    writer: string,
    bindings: WriterBindings,
    part: 'main' | 'status',
    what = `the version of ${writer}`,
  ): string {
    if (!proof) throw new RowRefusedError('unsigned', `${what} carries no signature`, part);
    const signer = proofSigner(proof);
    const bound = bindings.peerOf(writer);
    if (signer === undefined) throw new RowRefusedError('bad_signature', `${what}: malformed proof`, part);
    if (bound !== undefined && bound !== signer) {
      throw new RowRefusedError(
        'writer_mismatch',
        `${what} is signed by peer ${signer}, but host name ${JSON.stringify(writer)} belongs to peer ${bound}`,
        part,
      );
    }
    if (!verifyProof(stmt, proof)) {
      throw new RowRefusedError(
        'bad_signature',
        `${what}: the signature of peer ${signer} does not verify`,
        part,
      );
    }
    if (bound === undefined) bindings.bind(writer, signer);
    return signer;
  }
}
