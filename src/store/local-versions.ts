// The versions of this host's own writes: a new hybrid-clock timestamp for each part a write moves and
// the stored one for the part it keeps, and — with a RowAuthority — this host's proof of each, the
// binding of its name to its key, the signing of what it wrote before it signed, and the hand-over
// of an instance's status when a spec change moves it to another owner.

import type { XObject } from '../model/object.ts';
import { type ErrorObjectRef, HostNameTakenError } from './errors.ts';
import type { HybridLogicalClock } from './hlc.ts';
import type { Plan } from './object-rules.ts';
import { type PartVersion, parseBase, storedStatus, type VersionedRow } from './replicated-merge.ts';
import type { RowAuthority } from './row-authority.ts';
import { allRows } from './sqlite-rows.ts';
import type { ChangeRow, ObjectTable } from './sqlite-table.ts';

export interface LocalVersionsComponents {
  table: ObjectTable;
  clock: HybridLogicalClock;
  authority?: RowAuthority;
}

export class LocalVersions {
  readonly #table: ObjectTable;
  readonly #clock: HybridLogicalClock;
  readonly #authority: RowAuthority | undefined;
  readonly #writer: string;
  /** Whether this host's name is bound to its key here (it is once it has written anything). */
  #selfBound = false;

  constructor(components: LocalVersionsComponents, init: { writer: string }) {
    this.#table = components.table;
    this.#clock = components.clock;
    this.#authority = components.authority;
    this.#writer = init.writer;
  }

  /** With an authority: refuses a name bound here to another key (another host has it), binds this host's
   *  name to its key if it has written anything (a fresh store binds it with its first write: a host that
   *  turns out, at join, to have another's name leaves no binding of that name behind), and signs the parts
   *  it wrote before it signed its writes (a store from an older version, or kept while the host ran alone). */
  takeIdentity(): void {
    const a = this.#authority;
    if (!a) return;
    const t = this.#table;
    const bound = t.bindings.peerOf(this.#writer);
    if (bound !== undefined && bound !== a.peerId)
      throw new HostNameTakenError(this.#writer, bound, a.peerId);
    if (bound === undefined && !t.sql.ownRow.get(this.#writer, this.#writer)) return;
    t.tx.run(() => {
      t.bindings.bind(this.#writer, a.peerId);
      this.#selfBound = true;
      for (const r of allRows<ChangeRow>(t.sql.unsignedOwn, this.#writer, this.#writer)) {
        const key = { kind: r.kind, namespace: r.namespace, name: r.name };
        const obj = JSON.parse(r.body) as XObject;
        const ownMain = r.writer === this.#writer && !r.proof;
        const ownStatus = r.status_writer === this.#writer && !r.status_proof && r.status_hlc !== '';
        t.sql.setProofs.run(
          ownMain ? a.proveMain(key, r.hlc, r.deleted === 1, obj) : r.proof,
          ownStatus ? a.proveStatus(key, r.status_hlc, obj.status, parseBase(r.status_base)) : r.status_proof,
          r.kind,
          r.namespace,
          r.name,
        );
      }
    });
  }

  /** With an authority: a spec change that moves the status to another owner (an instance bound to
   *  another host) clears the status in the same write, so the old owner's status does not outlive it. */
  handOver(plan: Plan, row: VersionedRow | undefined): Plan {
    const a = this.#authority;
    if (!a || plan.op !== 'put' || plan.part !== 'main' || !row || row.deleted) return plan;
    const before = JSON.parse(row.body) as XObject;
    if (before.status === undefined || !a.policy.statusOwnerChanged(before, plan.object)) return plan;
    return { ...plan, part: 'both', object: { ...plan.object, status: undefined } };
  }

  /** For a dry run: throws ForbiddenError for a status this host may not write, as the write would. */
  checkStatus(key: ErrorObjectRef, object: XObject, row: VersionedRow | undefined): void {
    this.#authority?.localStatus(key, object, this.#writer, row && storedStatus(row));
  }

  /** The versions (with this host's proofs, under an authority) of a local write: new ones for the parts
   *  it writes, the stored ones for the part it keeps. Throws ForbiddenError for a status this host may
   *  not write. Runs inside the write's transaction. */
  versionsOf(
    key: ErrorObjectRef,
    plan: Exclude<Plan, { op: 'none' }>,
    object: XObject,
    row: VersionedRow | undefined,
  ): { main: PartVersion; status: PartVersion } {
    const a = this.#authority;
    if (a && !this.#selfBound) this.#bindSelf(a);
    const base =
      a && plan.part === 'status'
        ? a.localStatus(key, object, this.#writer, row && storedStatus(row))
        : undefined;
    const hlc = this.#clock.now();
    const main: PartVersion =
      plan.part === 'status' && row
        ? { hlc: row.hlc, writer: row.writer, proof: row.proof }
        : { hlc, writer: this.#writer, proof: a?.proveMain(key, hlc, plan.op === 'delete', object) ?? '' };
    const status: PartVersion =
      plan.part === 'main' && row
        ? { hlc: row.status_hlc, writer: row.status_writer, proof: row.status_proof, base: row.status_base }
        : {
            hlc,
            writer: this.#writer,
            proof: a?.proveStatus(key, hlc, object.status, base) ?? '',
            base: base ? JSON.stringify(base) : '',
          };
    return { main, status };
  }

  /** Inside a transaction, before this host's first write: binds its name to its key, unless a peer's rows
   *  already bound it to another (then this host has another's name and must not write). */
  #bindSelf(a: RowAuthority): void {
    const bound = this.#table.bindings.peerOf(this.#writer);
    if (bound !== undefined && bound !== a.peerId)
      throw new HostNameTakenError(this.#writer, bound, a.peerId);
    // Known bound once it is read back committed: a write rolled back takes its binding with it.
    if (bound === a.peerId) this.#selfBound = true;
    else this.#table.bindings.bind(this.#writer, a.peerId);
  }
}
