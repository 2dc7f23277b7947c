// Keeping what a host publishes inside the DHT record cap (MAX_RECORD_BYTES, 16 KiB). A host's record lists
// every instance it runs with its endpoints, and the kinds allow more of both than fit (110 instances a host by
// default, up to 128 endpoints an instance, URLs up to 2 KiB): a record over the cap is refused by every
// peer, so the host's discovery entry would go stale. Rather than refuse manifests that work everywhere else,
// the publisher puts in what fits — Ready instances with endpoints first, the endpoints an entry may carry
// (at most MAX_ENTRY_ENDPOINTS, each at most MAX_ENDPOINT_CHARS) — and says what it left out:
// `truncated: { instances, endpoints }` in the payload. The store (and the API) still has everything.

import { MAX_RECORD_BYTES, type RecordBody, type RecordKind } from './records.ts';

/** The most endpoints one instance entry carries, and the longest endpoint text (the discovery schema's). */
export const MAX_ENTRY_ENDPOINTS = 32;
export const MAX_ENDPOINT_CHARS = 512;

/** What a publisher left out of a record to fit the cap. */
export interface Truncation {
  instances: number;
  endpoints: number;
}

/** An entry's endpoints cut to what an entry may carry; `omitted` counts the rest. */
export function clampEndpoints(endpoints: string[]): { endpoints: string[]; omitted: number } {
  const fit = endpoints.filter((e) => e.length <= MAX_ENDPOINT_CHARS);
  const kept = fit.slice(0, MAX_ENTRY_ENDPOINTS);
  return { endpoints: kept, omitted: endpoints.length - kept.length };
}

/** The byte size of the signed record that would carry `payload` (every number at its widest). */
export function recordBytes(kind: RecordKind, key: string, peerId: string, payload: unknown): number {
  const widest = Number.MAX_SAFE_INTEGER;
  const body: RecordBody = {
    v: 1,
    kind,
    key,
    seq: widest,
    issuedAt: widest,
    expiresAt: widest,
    payload,
    peerId,
  };
  return Buffer.byteLength(JSON.stringify({ body: JSON.stringify(body), sig: 'x'.repeat(86) }));
}

/**
 * The largest `n` in [0, max] whose payload `build(n)` fits a record under `key` (binary search: the size
 * grows with n), with that payload. `build(0)` must fit.
 */
export function fitRecord<P>(
  kind: RecordKind,
  key: string,
  peerId: string,
  max: number,
  build: (n: number) => P,
): { n: number; payload: P } {
  const fits = (n: number) => recordBytes(kind, key, peerId, build(n)) <= MAX_RECORD_BYTES;
  if (fits(max)) return { n: max, payload: build(max) };
  let lo = 0;
  let hi = max; // fits(lo), !fits(hi)
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return { n: lo, payload: build(lo) };
}
