// Downloading a template image from an http(s) URL into a file, for import-image.ts, under this host's
// URL policy:
//  - every address a connection is made to — the URL's host, each redirect's, and whatever a name
//    resolves to at connect time — must be public unicast (address-policy.ts) unless the host allows
//    private addresses; the check runs inside the connection's own DNS lookup and again on the connected
//    socket's peer address, so DNS rebinding cannot slip a private address past it;
//  - at most `maxBytes`: refused up front when Content-Length says more, cut off while streaming when
//    the server sends more than it said (or said nothing);
//  - a connect timeout, and a low-speed limit instead of a total timeout: the download fails when fewer
//    than `stallBytes` arrive in any `stallWindowMs` (so a slow but moving download of a large image
//    goes on, a stalled or drip-fed one ends);
//  - at most `maxRedirects` redirects, to http(s) URLs only;
//  - the caller's signal aborts it at once (xenosd stopping).
// The body is hashed while it streams; the caller checks the digest.

import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { createWriteStream } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { specialAddress } from './address-policy.ts';
import { hashing } from './digest.ts';
import { ImageAddressRefusedError, ImageSourceError, ImageTooLargeError } from './errors.ts';

export interface UrlPolicy {
  /** Allow loopback, private, link-local and other special addresses. Default false. */
  allowPrivateAddresses?: boolean;
  /** Special addresses allowed all the same (an internal image server), as IP literals. */
  allowedAddresses?: string[];
  /** The resolver connections use (and the policy checks). Default node:dns lookup. */
  lookup?: typeof dnsLookup;
  /** The largest image downloaded, in bytes. Default DEFAULT_MAX_IMAGE_BYTES. */
  maxBytes?: number;
  /** From the start of a request until its TCP connection is up. Default 30 s. */
  connectTimeoutMs?: number;
  /** The low-speed limit: fail when fewer than `stallBytes` arrive in a `stallWindowMs` window.
   *  Defaults 60 s and 64 KiB (about 1 KiB/s, as `curl --speed-limit 1024 --speed-time 60`). */
  stallWindowMs?: number;
  stallBytes?: number;
  /** Default 5. */
  maxRedirects?: number;
}

export const DEFAULT_MAX_IMAGE_BYTES = 16 * 2 ** 30;
const DEFAULTS: Required<UrlPolicy> = {
  allowPrivateAddresses: false,
  allowedAddresses: [],
  lookup: dnsLookup,
  maxBytes: DEFAULT_MAX_IMAGE_BYTES,
  connectTimeoutMs: 30_000,
  stallWindowMs: 60_000,
  stallBytes: 64 * 1024,
  maxRedirects: 5,
};

function httpUrl(source: string, text: string, base?: URL): URL {
  let u: URL;
  try {
    u = new URL(text, base);
  } catch {
    throw new ImageSourceError(source, `${JSON.stringify(text)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ImageSourceError(
      source,
      `${base ? `redirected to ${u.href}: ` : ''}only http:// and https:// URLs can be imported`,
    );
  }
  return u;
}

/** Downloads `url` into the file `to`; returns the digest and size of what was written. */
export async function downloadImage(
  url: string,
  to: string,
  policy: UrlPolicy,
  signal: AbortSignal,
): Promise<{ digest: string; size: number; kind: 'file' }> {
  const p = { ...DEFAULTS, ...policy };
  let current = httpUrl(url, url);
  for (let redirects = 0; ; redirects++) {
    const res = await request(url, current, p, signal);
    const status = res.statusCode ?? 0;
    const where = current.href === url ? '' : ` (redirected to ${current.href})`;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.destroy();
      if (redirects >= p.maxRedirects)
        throw new ImageSourceError(url, `more than ${p.maxRedirects} redirects${where}`);
      current = httpUrl(url, res.headers.location, current);
      continue;
    }
    if (status !== 200) {
      res.destroy();
      throw new ImageSourceError(
        url,
        `the server answered ${status} ${res.statusMessage ?? ''}`.trim() + where,
      );
    }
    const announced = Number(res.headers['content-length']);
    if (Number.isFinite(announced) && announced > p.maxBytes) {
      res.destroy();
      throw new ImageTooLargeError(url, p.maxBytes, `the server announces ${announced} bytes${where}`);
    }
    const h = hashing({
      limit: p.maxBytes,
      tooLarge: () => new ImageTooLargeError(url, p.maxBytes, `the server sent more${where}`),
    });
    await pipeline(res, h, createWriteStream(to, { mode: 0o644 }), { signal });
    return { digest: `sha256:${h.hex()}`, size: h.bytes(), kind: 'file' };
  }
}

/** One GET of `u`, resolving with the response once its headers are in. */
function request(
  source: string,
  u: URL,
  p: Required<UrlPolicy>,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const check = (address: string): void => {
    if (p.allowPrivateAddresses || p.allowedAddresses.includes(address)) return;
    const kind = specialAddress(address);
    if (kind) throw new ImageAddressRefusedError(source, host, address, kind);
  };
  // An IP literal is connected to without a lookup: check it here.
  if (isIP(host)) check(host);
  const lookup: LookupFunction = (hostname, options, callback) => {
    p.lookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      try {
        for (const a of addresses) check(a.address);
      } catch (refused) {
        return callback(refused as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
  return new Promise((resolve, reject) => {
    const get = u.protocol === 'https:' ? https.get : http.get;
    const req = get(u, {
      agent: false,
      lookup,
      signal,
      headers: { 'user-agent': 'xenosd', 'accept-encoding': 'identity' },
    });
    let response: IncomingMessage | undefined;
    const fail = (err: Error) => (response ?? req).destroy(err);
    const connectTimer = setTimeout(
      () =>
        fail(
          new ImageSourceError(source, `no connection to ${u.host} within ${p.connectTimeoutMs / 1000} s`),
        ),
      p.connectTimeoutMs,
    );
    req.once('socket', (socket: Socket) => {
      socket.once('connect', () => {
        clearTimeout(connectTimer);
        try {
          check(socket.remoteAddress ?? '');
        } catch (refused) {
          fail(refused as Error);
          return;
        }
        let seen = socket.bytesRead;
        const watchdog = setInterval(() => {
          const now = socket.bytesRead;
          if (now - seen < p.stallBytes) {
            fail(
              new ImageSourceError(
                source,
                `the download stalled: ${now - seen} bytes in the last ${p.stallWindowMs / 1000} s (less than ${p.stallBytes})`,
              ),
            );
          }
          seen = now;
        }, p.stallWindowMs);
        watchdog.unref();
        socket.once('close', () => clearInterval(watchdog));
      });
      socket.once('close', () => clearTimeout(connectTimer));
    });
    req.once('response', (res) => {
      response = res;
      resolve(res);
    });
    req.once('error', (err) => {
      clearTimeout(connectTimer);
      if (err instanceof ImageSourceError || err instanceof ImageAddressRefusedError || signal.aborted) {
        reject(err);
        return;
      }
      const cause = (err as Error & { cause?: Error }).cause;
      reject(
        new ImageSourceError(source, `download from ${u.host} failed: ${cause?.message ?? err.message}`, {
          cause: err,
        }),
      );
    });
  });
}
