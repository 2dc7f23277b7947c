// The image upload API of one host, in the style of the OCI distribution API's resumable blob uploads,
// keyed by the blob's digest so a client resumes with no state of its own:
//
//   POST   /apis/images.xenos.io/v1/uploads            {"digest","size","kind"}
//            201 {digest, manifest, size, kind, blobDigest}   the image is held already: nothing to send
//            202 {upload, offset, size} + Location, Range     send from `offset`
//   PATCH  /apis/images.xenos.io/v1/uploads/<blob hex>  Content-Range: bytes S-E/TOTAL, the bytes
//            202 {offset}; 416 with {offset} when S is not where the upload stands
//   PUT    /apis/images.xenos.io/v1/uploads/<blob hex>  finish: size and SHA-256 checked, committed
//            201 {digest, manifest, size, kind, blobDigest}
//   GET    /apis/images.xenos.io/v1/uploads/<blob hex>  200 {offset, size} (404 when none)
//   DELETE /apis/images.xenos.io/v1/uploads/<blob hex>  drop it
//   GET    /apis/images.xenos.io/v1/images             this host's images, complete and partial
//
// Admin token only (an instance token is 403). Bodies stream to disk (upload-sessions.ts); the blob size
// is capped by the host's --max-image-size. Errors are Kubernetes Status objects.

import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BlobMismatchError,
  ImageDigestMismatchError,
  ImageError,
  ImageLinkEscapeError,
  ImageSourceError,
  ImageTooLargeError,
  InvalidDigestError,
  UnsafeArchiveError,
  UploadBusyError,
  UploadIncompleteError,
  UploadNotFoundError,
  UploadOffsetError,
} from '../images/errors.ts';
import type { ImportedImage } from '../images/image-entry.ts';
import type { ImageStore } from '../images/image-store.ts';
import type { UploadSessions } from '../images/upload-sessions.ts';
import { IMAGES_API, IMAGES_API_VERSION } from '../model/images-api.ts';
import { requireAdmin } from './auth.ts';
import { sendJson } from './http-io.ts';
import { readBody } from './request-body.ts';
import type { ApiRoute } from './server.ts';
import { ApiError, errors } from './status-errors.ts';

const UPLOADS = `${IMAGES_API}/uploads`;
const UPLOAD_PATH = /^\/apis\/images\.xenos\.io\/v1\/uploads\/([0-9a-f]{64})$/;
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

export interface ImageRouteComponents {
  store: ImageStore;
  uploads: UploadSessions;
}

/** The routes above; `components` is read per request (the store exists once the daemon started). */
export function imageUploadRoute(components: () => ImageRouteComponents | undefined): ApiRoute {
  return async (req, res, { path, principal }) => {
    if (path !== UPLOADS && path !== `${IMAGES_API}/images` && !UPLOAD_PATH.test(path)) return false;
    requireAdmin(req, principal, path, 'image uploads need the admin token');
    const c = components();
    if (!c) {
      req.resume();
      throw errors.serviceUnavailable('this host has no image store running yet; retry in a moment');
    }
    const method = req.method ?? 'GET';
    try {
      if (path === `${IMAGES_API}/images`) {
        req.resume();
        if (method !== 'GET') throw errors.methodNotAllowed(method, ['GET']);
        sendJson(res, 200, {
          kind: 'ImageList',
          apiVersion: IMAGES_API_VERSION,
          items: await c.store.list(),
        });
        return true;
      }
      if (path === UPLOADS) {
        if (method !== 'POST') throw errors.methodNotAllowed(method, ['POST']);
        await begin(req, res, c);
        return true;
      }
      const digest = `sha256:${UPLOAD_PATH.exec(path)![1]}`;
      const signal = abortOnClose(req);
      switch (method) {
        case 'GET': {
          req.resume();
          const s = await c.uploads.state(digest);
          if (!s) throw new UploadNotFoundError(digest);
          sendJson(res, 200, { upload: path, offset: s.offset, size: s.size }, rangeHeader(s.offset));
          return true;
        }
        case 'PATCH': {
          const start = pieceStart(req.headers['content-range']);
          const s = await c.uploads.append(digest, start, req, signal);
          sendJson(res, 202, { upload: path, offset: s.offset, size: s.size }, rangeHeader(s.offset));
          return true;
        }
        case 'PUT': {
          req.resume();
          const img = await c.uploads.finish(digest, signal);
          sendJson(res, 201, await described(c.store, img));
          return true;
        }
        case 'DELETE':
          req.resume();
          await c.uploads.cancel(digest);
          sendJson(res, 200, { upload: path, deleted: true });
          return true;
      }
      throw errors.methodNotAllowed(method, ['GET', 'PATCH', 'PUT', 'DELETE']);
    } catch (err) {
      req.resume();
      throw asApiError(err);
    }
  };
}

async function begin(req: IncomingMessage, res: ServerResponse, c: ImageRouteComponents): Promise<void> {
  const body = await readBody(req, 64 * 1024);
  let parsed: { digest?: unknown; size?: unknown; kind?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw errors.badRequest(
      'the body must be JSON: {"digest": "sha256:<blob hex>", "size": <bytes>, "kind": "file"|"directory"}',
    );
  }
  const { digest, size, kind } = parsed ?? {};
  const causes = [];
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest))
    causes.push({
      reason: 'FieldValueInvalid',
      field: 'digest',
      message: 'must be sha256:<64 lower-case hex> of the blob',
    });
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    causes.push({ reason: 'FieldValueInvalid', field: 'size', message: 'must be the blob size in bytes' });
  if (kind !== 'file' && kind !== 'directory')
    causes.push({
      reason: 'FieldValueNotSupported',
      field: 'kind',
      message: 'must be "file" or "directory"',
    });
  if (causes.length)
    throw errors.badRequest(
      `the upload request is invalid: ${causes.map((x) => `${x.field}: ${x.message}`).join(', ')}`,
      causes,
    );
  const got = await c.uploads.begin({
    digest: digest as string,
    size: size as number,
    kind: kind as 'file' | 'directory',
  });
  if ('held' in got) {
    sendJson(res, 201, await described(c.store, got.held));
    return;
  }
  const url = `${UPLOADS}/${(digest as string).slice(7)}`;
  sendJson(
    res,
    202,
    { upload: url, offset: got.upload.offset, size: got.upload.size },
    {
      Location: url,
      ...rangeHeader(got.upload.offset),
    },
  );
}

/** What a finished upload answers: the image and the manifest it travels as. */
async function described(store: ImageStore, img: ImportedImage) {
  const bytes = await store.manifest(img.digest);
  const entry = (await store.list()).find((s) => s.digest === img.digest);
  return {
    digest: img.digest,
    kind: img.kind,
    size: img.size,
    blobSize: entry?.blobSize,
    blobDigest: entry?.blobDigest,
    manifest: entry?.manifestDigest,
    chunks: bytes ? entry?.chunks : undefined,
  };
}

/** OCI's `Range: 0-<last byte>` (absent when nothing has arrived). */
function rangeHeader(offset: number): Record<string, string> {
  return offset > 0 ? { Range: `0-${offset - 1}` } : {};
}

function pieceStart(header: string | undefined): number {
  if (!header) throw errors.badRequest('a PATCH needs a Content-Range: bytes START-END/TOTAL header');
  const m = CONTENT_RANGE.exec(header.trim());
  if (!m) throw errors.badRequest(`Content-Range ${JSON.stringify(header)} is not "bytes START-END/TOTAL"`);
  return Number(m[1]);
}

function abortOnClose(req: IncomingMessage): AbortSignal {
  const ac = new AbortController();
  req.once('close', () => {
    if (!req.complete) ac.abort(new Error('the client went away'));
  });
  return ac.signal;
}

function asApiError(err: unknown): unknown {
  if (err instanceof ApiError || !(err instanceof ImageError)) return err;
  if (err instanceof UploadOffsetError)
    return new ApiError(416, 'RequestedRangeNotSatisfiable', err.message, undefined, rangeHeader(err.offset));
  if (err instanceof UploadNotFoundError) return new ApiError(404, 'NotFound', err.message);
  if (err instanceof UploadIncompleteError) return errors.badRequest(err.message);
  if (err instanceof UploadBusyError) return new ApiError(409, 'Conflict', err.message);
  if (err instanceof ImageTooLargeError) return errors.entityTooLarge(err.message);
  if (
    err instanceof BlobMismatchError ||
    err instanceof InvalidDigestError ||
    err instanceof UnsafeArchiveError ||
    err instanceof ImageLinkEscapeError ||
    err instanceof ImageDigestMismatchError ||
    err instanceof ImageSourceError
  )
    return new ApiError(422, 'Invalid', err.message);
  return err;
}
