// Property tests of the DHT record checks every node runs on what peers put and return: key parsing, the
// verifier, the validator (with any record already held) and the selector, over any bytes, genuine records
// edited at random (and, to reach the checks behind the signature, edited bodies signed with the owner's real
// key). Nothing crashes or hangs; every rejection is an InvalidRecordError with a reason the refusal counter
// knows; the selector always picks an index of what it was given. Fixed seed, bounded time; XENOS_FUZZ_RUNS /
// XENOS_FUZZ_SEED for longer runs.

import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidRecordError } from '../../src/p2p/errors.ts';
import {
  encodeRecord,
  hostRecordKey,
  instanceRecordKey,
  parseRecordKey,
  RECORD_REFUSAL_REASONS,
  type RecordBody,
  recordRefusalCounter,
  recordSelector,
  recordValidator,
  verifyRecord,
} from '../../src/p2p/records.ts';
import { fuzz, mutated } from '../store/fuzz.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('DHT records from peers (property tests)', () => {
  let key: PrivateKey;
  let id: string;
  let hostKey: string;
  let body: RecordBody;
  let genuine: Uint8Array;

  beforeAll(async () => {
    key = await generateKeyPair('Ed25519');
    id = peerIdFromPrivateKey(key).toString();
    hostKey = hostRecordKey(id);
    const now = Date.now();
    body = {
      v: 1,
      kind: 'host',
      key: hostKey,
      seq: now,
      issuedAt: now,
      expiresAt: now + 60_000,
      payload: {
        instances: [
          { namespace: 'default', name: 'web', serviceType: 'web', endpoints: ['10.0.0.1:80'], ready: true },
        ],
      },
      peerId: id,
    };
    genuine = await encodeRecord(body, key);
  });

  /** Any bytes, the genuine record's text edited, and edited bodies signed with the owner's key. */
  function records(): fc.Arbitrary<Uint8Array | Promise<Uint8Array>> {
    const envelope = JSON.parse(dec(genuine));
    return fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      mutated(envelope).map((e) => enc(JSON.stringify(e) ?? '')),
      fc
        .tuple(fc.nat(genuine.length - 1), fc.integer({ min: 1, max: 255 }))
        .map(([i, x]) => genuine.map((b, j) => (j === i ? b ^ x : b))),
      mutated(body).map((b) =>
        b === undefined ? Promise.resolve(genuine) : encodeRecord(b as RecordBody, key),
      ),
    );
  }

  it('parses any key to a kind and owner, or to none', async () => {
    const keys = fc.oneof(
      fc.string(),
      fc.string().map((s) => `/xenos/host/${s}`),
      fc.tuple(fc.string(), fc.string()).map(([n, m]) => `/xenos/inst/${id}/${n}/${m}`),
      fc.constantFrom(hostRecordKey(id), instanceRecordKey(id, 'default', 'web')),
    );
    await fuzz(
      'parseRecordKey',
      fc.property(keys, (k) => {
        const named = parseRecordKey(k);
        if (named) expect(['host', 'instance']).toContain(named.kind);
      }),
      5_000,
      1_000,
    );
  });

  it('verifies any record to its body or an InvalidRecordError', async () => {
    await fuzz(
      'verifyRecord',
      fc.asyncProperty(
        records(),
        fc.constantFrom(hostKey, instanceRecordKey(id, 'default', 'web'), '/xenos/x'),
        async (r, k) => {
          try {
            const got = await verifyRecord(k, await r);
            expect(got.peerId).toBe(id);
            expect(got.key).toBe(k);
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(InvalidRecordError);
          }
        },
      ),
      3_000,
      2_000,
    );
  });

  it('validates any put against any held record: refused with a counted reason, or taken', async () => {
    const refusals = recordRefusalCounter();
    await fuzz(
      'recordValidator',
      fc.asyncProperty(records(), fc.option(records(), { nil: undefined }), async (r, held) => {
        const stored = held === undefined ? undefined : await held;
        const validate = recordValidator({ getStored: async () => stored, refusals });
        const before = refusals.total;
        try {
          await validate(enc(hostKey), await r);
        } catch (err) {
          expect(err, String(err)).toBeInstanceOf(InvalidRecordError);
          expect(refusals.total).toBe(before + 1);
        }
      }),
      3_000,
      2_000,
    );
    expect(Object.keys(refusals.snapshot()).sort()).toEqual([...RECORD_REFUSAL_REASONS].sort());
    console.log(`fuzz record refusals by reason: ${JSON.stringify(refusals.snapshot())}`);
  });

  it('selects one of the records it is given, whatever they are', async () => {
    await fuzz(
      'recordSelector',
      fc.asyncProperty(fc.array(records(), { minLength: 1, maxLength: 5 }), async (rs) => {
        const all = await Promise.all(rs);
        const i = recordSelector(enc(hostKey), all);
        expect(Number.isInteger(i) && i >= 0 && i < all.length).toBe(true);
      }),
      2_000,
      1_000,
    );
  });
});
