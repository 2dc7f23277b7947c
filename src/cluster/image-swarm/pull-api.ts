// The pull API of one host, for `xenosctl image pull DIGEST --host H`: ask H to get an image from its
// peers, and watch how far it is.
//
//   POST /apis/images.xenos.io/v1/pulls           {"digest":"sha256:..."}
//          201 ImagePull {done: true, percent: 100}   H holds the image already
//          202 ImagePull                              H pulls it now (or was already pulling it)
//   GET  /apis/images.xenos.io/v1/pulls/<digest>  200 ImagePull: done once held; `error` when the last
//          pull failed (a POST starts another); 404 when H neither holds nor pulls it
//
// ImagePull is {apiVersion, kind, digest, host, bytes, size, percent, holders, updatedAt, done?, error?}:
// the same figures as status.imagePull of templates and instances. Admin token only. A host without the
// p2p overlay cannot pull (503).

import type { IncomingMessage } from 'node:http';
import { requireAdmin } from '../../api/auth.ts';
import { sendJson } from '../../api/http-io.ts';
import { readBody } from '../../api/request-body.ts';
import type { ApiRoute } from '../../api/server.ts';
import { ApiError, errors } from '../../api/status-errors.ts';
import { DIGEST_PATTERN } from '../../images/digest.ts';
import { IMAGES_API_VERSION, PULLS_PATH } from '../../model/images-api.ts';
import type { ImagePullStatus } from '../../model/service-template.ts';
import type { PullProgress } from './puller.ts';

const PULLS = PULLS_PATH;
const PULL_PATH = /^\/apis\/images\.xenos\.io\/v1\/pulls\/(sha256:[0-9a-f]{64})$/;
const MAX_BODY = 4096;

export interface ImagePull extends ImagePullStatus {
  apiVersion: typeof IMAGES_API_VERSION;
  kind: 'ImagePull';
  done?: boolean;
  error?: { reason: string; message: string };
}

/** What the route uses of this host: its image store, and the swarm when the host is in an overlay. */
export interface PullSources {
  hostName: string;
  /** The complete image's blob size, or undefined when this host does not hold it. */
  held(digest: string): Promise<{ size: number } | undefined>;
  swarm?: {
    prefetch(digest: string, options?: { retryMs?: number }): void;
    pulling(digest: string): { progress?: PullProgress; error?: Error } | undefined;
  };
}

export function pullRoute(sources: () => PullSources | undefined): ApiRoute {
  return async (req, res, { path, principal }) => {
    const m = PULL_PATH.exec(path);
    if (path !== PULLS && !m) return false;
    requireAdmin(req, principal, path, 'pulling images needs the admin token');
    const src = sources();
    if (!src) {
      req.resume();
      throw new ApiError(503, 'ServiceUnavailable', 'xenosd is starting; retry in a moment');
    }
    const method = req.method ?? 'GET';
    if (m) {
      req.resume();
      if (method !== 'GET') throw errors.methodNotAllowed(method, ['GET']);
      const found = await describe(src, m[1]);
      if (!found)
        throw new ApiError(
          404,
          'NotFound',
          `host ${src.hostName} neither holds nor pulls image ${m[1]}; POST ${PULLS} to start a pull`,
        );
      sendJson(res, 200, found);
      return true;
    }
    if (method !== 'POST') {
      req.resume();
      throw errors.methodNotAllowed(method, ['POST']);
    }
    const digest = await digestOf(req);
    const held = await describe(src, digest);
    if (held?.done) {
      sendJson(res, 201, held);
      return true;
    }
    if (!src.swarm)
      throw new ApiError(
        503,
        'ServiceUnavailable',
        `host ${src.hostName} runs without the p2p overlay (--p2p) and cannot pull images from peers; push the image to it (xenosctl image push)`,
      );
    src.swarm.prefetch(digest, { retryMs: 0 });
    sendJson(res, 202, (await describe(src, digest)) ?? pull(src.hostName, digest, {}));
    return true;
  };
}

async function digestOf(req: IncomingMessage): Promise<string> {
  const body = await readBody(req, MAX_BODY, 'a pull request is {"digest": "sha256:<64 hex>"}');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw errors.badRequest('the body is not JSON; send {"digest": "sha256:<64 hex>"}');
  }
  const digest = (parsed as { digest?: unknown } | null)?.digest;
  if (typeof digest !== 'string' || !DIGEST_PATTERN.test(digest))
    throw errors.badRequest('digest: must be sha256:<64 lower-case hex digits>');
  return digest;
}

async function describe(src: PullSources, digest: string): Promise<ImagePull | undefined> {
  const held = await src.held(digest);
  if (held)
    return pull(
      src.hostName,
      digest,
      { bytes: held.size, size: held.size, percent: 100, holders: 0 },
      { done: true },
    );
  const state = src.swarm?.pulling(digest);
  if (!state) return undefined;
  if (state.error)
    return pull(
      src.hostName,
      digest,
      {},
      { error: { reason: state.error.name, message: state.error.message } },
    );
  return pull(src.hostName, digest, state.progress ?? {});
}

function pull(
  host: string,
  digest: string,
  p: Partial<PullProgress>,
  extra: Pick<ImagePull, 'done' | 'error'> = {},
): ImagePull {
  return {
    apiVersion: IMAGES_API_VERSION,
    kind: 'ImagePull',
    digest,
    host,
    bytes: p.bytes ?? 0,
    size: p.size ?? 0,
    percent: p.percent ?? 0,
    holders: p.holders ?? 0,
    updatedAt: new Date().toISOString(),
    ...extra,
  };
}
