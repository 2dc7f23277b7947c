// Property tests of what a peer can send to the state-replication protocol: bytes off the wire, every message
// (push, exchange, digest, whois, and the replies), every row, as valid messages edited at random and as any
// JSON at all. Nothing crashes or hangs; every refusal is a typed error (MalformedMessageError,
// MessageTooLargeError) or a row refusal counted under a known reason; the victim's clock never jumps.
// Fixed seed and a time budget per target; XENOS_FUZZ_RUNS / XENOS_FUZZ_SEED for longer runs.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKinds } from '../../src/api/kinds.ts';
import { Validator } from '../../src/api/validation.ts';
import type { XObject } from '../../src/model/object.ts';
import { ROW_REFUSAL_REASONS } from '../../src/store/errors.ts';
import { formatHlc, parseHlc } from '../../src/store/hlc.ts';
import { decodeMessage, encodeMessage } from '../../src/store/replication/codec.ts';
import { MalformedMessageError, MessageTooLargeError } from '../../src/store/replication/errors.ts';
import { MemoryNetwork, type MemoryTransport } from '../../src/store/replication/memory-transport.ts';
import {
  checkRowEnvelope,
  parseDigestReply,
  parseExchangeReply,
  parsePushReply,
  parseRequest,
  parseWhoisReply,
} from '../../src/store/replication/messages.ts';
import { Replicator } from '../../src/store/replication/replicator.ts';
import type { SyncRequestHandler } from '../../src/store/replication/transport.ts';
import type { ReplicatedRow, SqliteStore } from '../../src/store/sqlite-store.ts';
import { newIdentity, signedStore } from '../cluster/signed-store.ts';
import { captureLog } from '../log-capture.ts';
import { fuzz, mutated } from './fuzz.ts';

const CAP = 64 * 1024;

function typed(err: unknown): boolean {
  return err instanceof MalformedMessageError || err instanceof MessageTooLargeError;
}

describe('replication messages from a peer (property tests)', () => {
  let victim: SqliteStore;
  let writer: SqliteStore;
  let replicator: Replicator;
  let handler: SyncRequestHandler;
  let transport: MemoryTransport;
  let row: ReplicatedRow;
  const { log, lines: logs } = captureLog();
  let bases: unknown[];

  beforeAll(async () => {
    writer = signedStore('w', await newIdentity());
    victim = signedStore('v', await newIdentity());
    writer.create({
      apiVersion: 'xenos.io/v1alpha1',
      kind: 'ServiceInstance',
      metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
      spec: { templateRef: { name: 'web' }, host: 'w' },
    });
    const web = writer.get({ kind: 'ServiceInstance', namespace: 'default', name: 'web' })!;
    writer.update(
      { ...web, status: { phase: 'Running', host: 'w' } as XObject['status'] },
      { subresource: 'status' },
    );
    row = JSON.parse(
      JSON.stringify(writer.replicationRow({ kind: 'ServiceInstance', namespace: 'default', name: 'web' })),
    );
    const validator = new Validator(loadKinds());
    transport = new MemoryNetwork({ maxMessageBytes: CAP }).endpoint('v');
    const onRequest = transport.onRequest.bind(transport);
    transport.onRequest = (h) => {
      handler = h;
      onRequest(h);
    };
    replicator = new Replicator(
      {
        store: victim,
        transport,
        validate: (obj) => [
          ...validator.validate(structuredClone(obj)),
          ...validator.validate(structuredClone(obj), { subresource: 'status' }),
        ],
        log,
      },
      { syncIntervalMs: 3_600_000 },
    );
    await replicator.start();
    bases = [
      { type: 'push', rows: [row] },
      { type: 'exchange', rows: [row], want: [['ServiceInstance', 'default', 'web']] },
      { type: 'digest', buckets: Array.from({ length: 128 }, () => 'x') },
      { type: 'whois', names: ['w', 'v'] },
    ];
  });

  afterAll(async () => {
    await replicator.stop();
    victim.close();
    writer.close();
  });

  it('decodes any bytes to a value or a typed error', async () => {
    await fuzz(
      'decodeMessage(bytes)',
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 256 }),
          fc.string().map((s) => new TextEncoder().encode(s)),
        ),
        (bytes) => {
          try {
            decodeMessage(bytes, 128);
          } catch (err) {
            expect(typed(err), String(err)).toBe(true);
          }
        },
      ),
      5_000,
      1_000,
    );
  });

  it('parses any request, and edits of valid ones, to a request or a MalformedMessageError', async () => {
    const arb = fc.oneof(fc.jsonValue({ maxDepth: 4 }), ...bases.map((b) => mutated(b)));
    await fuzz(
      'parseRequest',
      fc.property(arb, (m) => {
        try {
          const req = parseRequest(m);
          expect(['push', 'exchange', 'digest', 'whois']).toContain(req.type);
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(MalformedMessageError);
        }
      }),
      3_000,
      1_000,
    );
  });

  it('parses any reply to a reply or a MalformedMessageError', async () => {
    const replies = [
      { applied: 1, rejected: 0 },
      {
        buckets: [3],
        versions: [['ServiceInstance', 'default', 'web', row.hlc, row.statusHlc]],
        more: false,
      },
      { rows: [row], answered: 1, applied: 0, rejected: 0 },
      { bindings: [['w', 'peer']] },
    ];
    const arb = fc.oneof(fc.jsonValue({ maxDepth: 4 }), ...replies.map((r) => mutated(r)));
    await fuzz(
      'reply parsers',
      fc.property(arb, (m) => {
        for (const parse of [
          () => parsePushReply(m),
          () => parseDigestReply(m, 128),
          () => parseExchangeReply(m, 1),
          () => parseWhoisReply(m),
        ]) {
          try {
            parse();
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(MalformedMessageError);
          }
        }
      }),
      3_000,
      1_000,
    );
  });

  it('checks any row envelope to a row or a MalformedMessageError', async () => {
    await fuzz(
      'checkRowEnvelope',
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), mutated(row)), (r) => {
        try {
          const ok = checkRowEnvelope(r);
          expect(typeof ok.proof).toBe('string');
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(MalformedMessageError);
        }
      }),
      3_000,
      1_000,
    );
  });

  it('serves and applies any message: a reply or a typed error, refused rows counted by reason, no clock jump', async () => {
    const arb = fc.oneof(
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
      { weight: 6, arbitrary: fc.oneof(...bases.map((b) => mutated(b))) },
      // Rows edited inside a valid push: the row checks, not the frame, are what is exercised.
      { weight: 6, arbitrary: mutated(row).map((r) => ({ type: 'push', rows: [r] })) },
      // Versions, writers and proofs swapped for others: clocks, signatures, bindings, permissions.
      { weight: 6, arbitrary: versionEdits(row).map((r) => ({ type: 'push', rows: [r] })) },
    );
    const signal = new AbortController().signal;
    await fuzz(
      'Replicator serve + apply',
      fc.asyncProperty(arb, async (m) => {
        const before = replicator.stats.rejected;
        const refusedBefore = replicator.refusals.total;
        let reply: unknown;
        try {
          // As the transport hands it over: through the wire codec first.
          reply = await handler('peer', decodeMessage(encodeMessage(m, CAP), CAP), { signal });
        } catch (err) {
          expect(typed(err), String(err)).toBe(true);
          return;
        }
        const r = reply as { rejected?: number };
        if (typeof r?.rejected === 'number') {
          expect(replicator.stats.rejected - before).toBe(r.rejected);
          expect(replicator.refusals.total - refusedBefore).toBeGreaterThanOrEqual(r.rejected);
        }
        expect(logs.filter((l) => l.msg.includes('could not store'))).toEqual([]);
        const clock = parseHlc(
          victim.replicationRow({ kind: 'ServiceInstance', namespace: 'default', name: 'web' })?.hlc ??
            row.hlc,
        );
        expect(clock.physical).toBeLessThanOrEqual(Date.now() + 60_000);
      }),
      1_500,
      3_000,
    );
    const counted = replicator.refusals.snapshot();
    expect(Object.keys(counted).sort()).toEqual([...ROW_REFUSAL_REASONS].sort());
    console.log(`fuzz row refusals by reason: ${JSON.stringify(counted)}`);
    expect(replicator.refusals.total).toBeGreaterThan(0);
  });
});

/** `row` with its versions, writers and proofs replaced by plausible others (any time, any counter, the
 *  other part's proof, none). */
function versionEdits(row: ReplicatedRow): fc.Arbitrary<ReplicatedRow> {
  const now = Date.now();
  const writer = fc.constantFrom('w', 'v', 'x');
  const hlc = fc
    .tuple(
      fc.oneof(
        fc.integer({ min: 0, max: 999_999_999_999_999 }),
        fc.integer({ min: now - 60_000, max: now + 120_000 }),
      ),
      fc.oneof(fc.integer({ min: 0, max: 9_999_999_999 }), fc.integer({ min: 0, max: 10 })),
      writer,
    )
    .map(([physical, logical, w]) => formatHlc({ physical, logical, writer: w }));
  const proof = fc.constantFrom('', row.proof, row.statusProof, `${row.proof}x`, 'not a proof');
  return fc
    .record({ hlc, statusHlc: hlc, proof, statusProof: proof, deleted: fc.boolean() }, { requiredKeys: [] })
    .map((over) => {
      const r = { ...row, ...over };
      // Keep each version's writer its timestamp's, so the store's own consistency check passes.
      return { ...r, writer: parseHlc(r.hlc).writer, statusWriter: parseHlc(r.statusHlc).writer };
    });
}
