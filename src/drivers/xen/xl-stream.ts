// A reader of the stream `xl migrate` sends, passed through byte for byte, that stops where the domain's
// state is all sent and nothing of it is used yet: before the libxl END record. By then the source domain
// is suspended (libxc suspends it before its last memory round), and the destination attaches the domain's
// disks only after that record (libxl sets up devices once the stream is done), so a Xen live move copies
// the last state of the disk layer while the stream waits there (live-migration.ts).
//
// The stream, as Xen 4.x writes it (docs/specs in Xen's tree: libxl-migration-stream, libxc-migration-stream):
//   xl's header: 32 bytes of magic, byte order, flags, and `optional_data_len` (the config as JSON) after it;
//   libxl's header: "LibxlFmt" (big-endian), version 2, options;
//   libxl records: type, length (little-endian u32 each), the body padded to 8 bytes. LIBXC_CONTEXT (1) has
//   no body and is followed by libxc's stream: its image header (marker 0xFF×8, "XENF", version, options:
//   24 bytes), its domain header (16 bytes), then records framed the same way up to its own END (0);
//   then libxl's records again (emulator data) up to libxl's END (0).
// Anything else is refused, not passed on: a move whose stream cannot be followed cannot hold its disk
// consistent.

import { Transform, type TransformCallback } from 'node:stream';

const XL_MAGIC = Buffer.from('Xen saved domain, xl format\n \0 \r', 'latin1');
const XL_HEADER_BYTES = 48;
const LIBXL_IDENT = Buffer.from('LibxlFmt', 'latin1');
const LIBXL_HEADER_BYTES = 16;
const LIBXC_ID = Buffer.from('XENF', 'latin1');
const LIBXC_HEADERS_BYTES = 24 + 16;
const RECORD_HEADER_BYTES = 8;
const REC_END = 0;
const REC_LIBXC_CONTEXT = 1;
/** libxc's record types written once the domain is suspended (its CPU and platform state). */
const LIBXC_AFTER_SUSPEND = new Set([0x08 /* TSC_INFO */, 0x09 /* HVM_CONTEXT */, 0x0a /* HVM_PARAMS */]);
/** The largest body the reader believes: libxc's page batches are at most a few MiB. */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;

type Phase = 'xl-header' | 'libxl-header' | 'libxl-record' | 'libxc-headers' | 'libxc-record' | 'after-end';

const NEED: Record<Exclude<Phase, 'after-end'>, number> = {
  'xl-header': XL_HEADER_BYTES,
  'libxl-header': LIBXL_HEADER_BYTES,
  'libxl-record': RECORD_HEADER_BYTES,
  'libxc-headers': LIBXC_HEADERS_BYTES,
  'libxc-record': RECORD_HEADER_BYTES,
};

export class XlStreamError extends Error {
  constructor(message: string) {
    super(`the xl migration stream cannot be followed: ${message}`);
    this.name = 'XlStreamError';
  }
}

export interface XlStreamHooks {
  /** Called once, when the stream reaches libxl's END record; the stream waits until it resolves. A
   *  rejection fails the stream. */
  atEnd(): Promise<void>;
  /** libxc's first record written after the domain was suspended (its CPU state). */
  suspended?(): void;
}

/** Passes `xl migrate`'s stream through, waiting at libxl's END record for `hooks.atEnd`. */
export class XlStreamWatch extends Transform {
  /** Bytes passed so far. */
  bytes = 0;
  private phase: Phase = 'xl-header';
  private head = Buffer.alloc(0);
  private skip = 0;
  private sawSuspend = false;
  private readonly hooks: XlStreamHooks;

  constructor(hooks: XlStreamHooks) {
    super();
    this.hooks = hooks;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.scan(chunk).then(() => done(), done);
  }

  private async scan(chunk: Buffer): Promise<void> {
    let at = 0;
    let from = 0;
    while (at < chunk.length && this.phase !== 'after-end') {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        continue;
      }
      const need = NEED[this.phase] - this.head.length;
      const piece = chunk.subarray(at, at + need);
      this.head = this.head.length === 0 ? Buffer.from(piece) : Buffer.concat([this.head, piece]);
      at += piece.length;
      if (this.head.length < NEED[this.phase]) break;
      const head = this.head;
      this.head = Buffer.alloc(0);
      if (this.readHeader(head)) {
        // libxl's END: everything before it goes on now, then the stream waits for the hook. (Bytes of the
        // record's header that came in an earlier chunk went on with it: half a header tells the reader
        // nothing.)
        const mine = at - piece.length;
        this.pass(chunk.subarray(from, mine));
        await this.hooks.atEnd();
        from = mine;
        this.phase = 'after-end';
      }
    }
    this.pass(chunk.subarray(from));
  }

  private pass(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.bytes += bytes.length;
    this.push(bytes);
  }

  /** Reads one header of the current phase; true at libxl's END record. */
  private readHeader(head: Buffer): boolean {
    switch (this.phase) {
      case 'xl-header': {
        if (!head.subarray(0, XL_MAGIC.length).equals(XL_MAGIC)) throw new XlStreamError('no xl header');
        this.skip = this.size(head.readUInt32LE(44), 'the config');
        this.phase = 'libxl-header';
        return false;
      }
      case 'libxl-header': {
        if (!head.subarray(0, 8).equals(LIBXL_IDENT)) throw new XlStreamError('no libxl header');
        const version = head.readUInt32BE(8);
        if (version !== 2) throw new XlStreamError(`libxl stream version ${version}, not 2`);
        if ((head.readUInt32BE(12) & 1) !== 0) throw new XlStreamError('a big-endian stream');
        this.phase = 'libxl-record';
        return false;
      }
      case 'libxl-record': {
        const type = head.readUInt32LE(0);
        if (type === REC_END) return true;
        this.skip = padded(this.size(head.readUInt32LE(4), `libxl record ${type}`));
        if (type === REC_LIBXC_CONTEXT) this.phase = 'libxc-headers';
        return false;
      }
      case 'libxc-headers': {
        if (head.readBigUInt64BE(0) !== 0xffff_ffff_ffff_ffffn || !head.subarray(8, 12).equals(LIBXC_ID)) {
          throw new XlStreamError('no libxc header after the LIBXC_CONTEXT record');
        }
        if ((head.readUInt16BE(16) & 1) !== 0) throw new XlStreamError('a big-endian libxc stream');
        this.phase = 'libxc-record';
        return false;
      }
      case 'libxc-record': {
        const type = head.readUInt32LE(0);
        this.skip = padded(this.size(head.readUInt32LE(4), `libxc record ${type}`));
        if (type === REC_END) this.phase = 'libxl-record';
        else if (LIBXC_AFTER_SUSPEND.has(type) && !this.sawSuspend) {
          this.sawSuspend = true;
          this.hooks.suspended?.();
        }
        return false;
      }
      default:
        return false;
    }
  }

  private size(bytes: number, what: string): number {
    if (bytes > MAX_RECORD_BYTES) throw new XlStreamError(`${what} claims ${bytes} bytes`);
    return bytes;
  }
}

function padded(n: number): number {
  return (n + 7) & ~7;
}
