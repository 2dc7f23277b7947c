// The wire form of `/xenos/migrate/1.0.0`, the stream protocol a migration's bytes travel on between two
// hosts of the cluster (over its connections: cluster key, then Noise — never a port of its own). The
// source opens one stream per labelled channel a driver asks for (`domain-dir` for a cold move; `control`,
// `memory`, `disk` for QEMU) and begins each with one length-prefixed JSON header (unsigned varint, as
// @libp2p/utils' lpStream frames it):
//
//   source → target: {"migration":{"namespace":N,"name":M,"uid":U},"label":L,"seq":S}   (≤ 1 KiB)
//   target → source: {"ok":true} | {"error":{"code":C,"message":"..."}}                    (≤ 4 KiB)
//
// then the driver's bytes, raw, both ways, until each side half-closes. `seq` numbers the streams of one
// migration from 0 in the order the source opened them, so the target hands them to its driver in that
// order even when two dials race. The target accepts a stream only when its replicated store holds that
// ServiceMigration naming it as target and the dialing peer is the key of the instance's host.

import { DNS1123_SUBDOMAIN } from '../../model/names.ts';
import { decodeJsonObject, encodeJsonFrame } from '../../p2p/json-frame.ts';

export const MIGRATE_PROTOCOL = '/xenos/migrate/1.0.0';
export const MAX_HEADER_BYTES = 1024;
export const MAX_REPLY_BYTES = 4 * 1024;
/** Streams one migration may open (QEMU needs a handful; a peer opening more is refused). */
export const MAX_STREAMS = 16;
const LABEL_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

export const REFUSAL_CODES = [
  /** The header does not parse or breaks a rule. */
  'BadRequest',
  /** No such ServiceMigration here (yet), or it does not name this host as target. */
  'UnknownMigration',
  /** The dialing peer is not the host the instance is bound to. */
  'WrongSource',
  /** The migration already ended on this host, or opened too many streams. */
  'Finished',
  'Internal',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export interface MigrationRef {
  namespace: string;
  /** The ServiceMigration's name. */
  name: string;
  /** The ServiceMigration's uid: a migration deleted and made again under the same name is another. */
  uid: string;
}

export interface StreamHeader {
  migration: MigrationRef;
  label: string;
  seq: number;
}

export type Reply = { ok: true } | { error: { code: RefusalCode; message: string } };

/** A header or reply that is not what the protocol allows. */
export class MigrationProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationProtocolError';
  }
}

/** A MigrationProtocolError of `message`: how this protocol's frames name what is wrong. */
export const protocolError = (message: string) => new MigrationProtocolError(message);

export function encodeFrame(value: unknown, max: number, what: string): Uint8Array {
  return encodeJsonFrame(value, max, what, protocolError);
}

const isName = (v: unknown): v is string =>
  typeof v === 'string' && v.length <= 253 && DNS1123_SUBDOMAIN.test(v);

/** A stream header's shape, or MigrationProtocolError naming the field that is wrong. */
export function parseHeader(bytes: Uint8Array): StreamHeader {
  const h = decodeJsonObject(bytes, MAX_HEADER_BYTES, 'the header', protocolError);
  const m = h.migration as Record<string, unknown> | undefined;
  if (typeof m !== 'object' || m === null) throw new MigrationProtocolError('header: migration is missing');
  if (!isName(m.namespace)) throw new MigrationProtocolError('header: migration.namespace is not a name');
  if (!isName(m.name)) throw new MigrationProtocolError('header: migration.name is not a name');
  if (typeof m.uid !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(m.uid))
    throw new MigrationProtocolError('header: migration.uid is not a uid');
  if (typeof h.label !== 'string' || !LABEL_PATTERN.test(h.label))
    throw new MigrationProtocolError(`header: label must match ${LABEL_PATTERN}`);
  if (typeof h.seq !== 'number' || !Number.isInteger(h.seq) || h.seq < 0 || h.seq >= MAX_STREAMS)
    throw new MigrationProtocolError(`header: seq must be an integer 0..${MAX_STREAMS - 1}`);
  return { migration: { namespace: m.namespace, name: m.name, uid: m.uid }, label: h.label, seq: h.seq };
}

export function parseReply(bytes: Uint8Array, from: string): Reply {
  const r = decodeJsonObject(bytes, MAX_REPLY_BYTES, `the answer of ${from}`, protocolError);
  if (r.ok === true) return { ok: true };
  const e = r.error as { code?: unknown; message?: unknown } | undefined;
  if (e && REFUSAL_CODES.includes(e.code as RefusalCode) && typeof e.message === 'string')
    return { error: { code: e.code as RefusalCode, message: e.message.slice(0, 1024) } };
  throw new MigrationProtocolError(`the answer of ${from} is neither {ok} nor {error}`);
}

export const refString = (m: MigrationRef) => `ServiceMigration ${m.namespace}/${m.name}`;
